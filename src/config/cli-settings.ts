/**
 * Non-secret CLI settings: one entry per profile (gateway URL, its discovery document, where
 * the refresh token is kept, who logged in). Kept with `conf` in `<configDir>/settings.json`.
 * Secrets never go here: values are re-parsed with the schema on write, which drops any key
 * the schema does not name.
 *
 * A malformed profile (hand-edited, or written by another version) is ignored, as if absent,
 * and reported in `problems`; a file that is not JSON at all is moved aside on the next write.
 */
import Conf from 'conf';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DiscoverySchema } from '../protocol/discovery.ts';
import { defaultConfigDir } from './paths.ts';
import { ensurePrivateDir } from './private-files.ts';
import { SETTINGS_FILE_NAME } from './profile-login.ts';

export const ProfileUserSchema = z.object({
  subject: z.string(),
  email: z.string().nullable(),
  groups: z.array(z.string()),
});

export const ProfileSettingsSchema = z.object({
  gatewayUrl: z.string().min(1),
  discovery: DiscoverySchema,
  credentialStore: z.enum(['keychain', 'file', 'env']),
  user: ProfileUserSchema.nullable(),
  loggedInAt: z.number().nullable(),
});

export type ProfileUser = z.infer<typeof ProfileUserSchema>;
export type ProfileSettings = z.infer<typeof ProfileSettingsSchema>;

export interface CliSettings {
  /** The profile's settings, or null when absent or malformed (see `problems`). */
  getProfile(name: string): ProfileSettings | null;
  /** Validates and writes; throws a ZodError for a value that does not fit the schema. */
  setProfile(name: string, value: ProfileSettings): void;
  deleteProfile(name: string): void;
  /** Names of the well-formed profiles. */
  listProfiles(): string[];
  /** What was ignored on the last read, one line each, safe to print (no values quoted). */
  readonly problems: readonly string[];
  readonly path: string;
}

type Stored = { profiles?: Record<string, unknown> };

export function openCliSettings(configDir: string = defaultConfigDir()): CliSettings {
  let conf: Conf<Stored> | undefined;
  let problems: string[] = [];
  const path = join(configDir, `${SETTINGS_FILE_NAME}.json`);

  const open = (): Conf<Stored> => {
    // conf creates the directory (even to read) 0755; it is aigov's own and holds
    // credentials.json too: create it 0700 first, or make an existing one 0700.
    if (conf === undefined) ensurePrivateDir(configDir);
    conf ??= new Conf<Stored>({
      projectName: 'aigov',
      cwd: configDir,
      configName: SETTINGS_FILE_NAME,
      configFileMode: 0o600,
      accessPropertiesByDotNotation: false,
      clearInvalidConfig: false,
    });
    return conf;
  };

  /** Every stored profile, raw, or null when the file itself cannot be parsed. */
  const readRaw = (): Record<string, unknown> | null => {
    problems = [];
    let profiles: unknown;
    try {
      profiles = open().get('profiles');
    } catch (error) {
      if ((error as Error).name === 'SyntaxError' || isUnparsable(path)) {
        problems.push(`${path} is not valid JSON; its settings are ignored (the file is replaced on the next login)`);
        return null;
      }
      throw error;
    }
    if (profiles === undefined) return {};
    if (typeof profiles !== 'object' || profiles === null || Array.isArray(profiles)) {
      problems.push(`${path}: "profiles" is not an object; ignored`);
      return {};
    }
    return profiles as Record<string, unknown>;
  };

  const validProfiles = (): Map<string, ProfileSettings> => {
    const out = new Map<string, ProfileSettings>();
    const raw = readRaw() ?? {};
    for (const [name, value] of Object.entries(raw)) {
      const parsed = ProfileSettingsSchema.safeParse(value);
      if (parsed.success) {
        out.set(name, parsed.data);
      } else {
        const keys = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.') || '(root)'))].slice(0, 5);
        problems.push(`${path}: profile "${name}" is malformed (${keys.join(', ')}); ignored — run \`aigov login --profile ${name}\` to rewrite it`);
      }
    }
    return out;
  };

  const writeProfiles = (mutate: (profiles: Record<string, unknown>) => Record<string, unknown>): void => {
    let raw = readRaw();
    if (raw === null) {
      // Move the unparsable file aside rather than let conf throw on every write.
      renameSync(path, `${path}.invalid-${Date.now()}`);
      conf = undefined;
      raw = {};
    }
    open().set('profiles', mutate(raw));
  };

  return {
    path,
    get problems() {
      return problems;
    },
    getProfile(name) {
      return validProfiles().get(name) ?? null;
    },
    listProfiles() {
      return [...validProfiles().keys()];
    },
    setProfile(name, value) {
      const clean = ProfileSettingsSchema.parse(value);
      writeProfiles((profiles) => Object.fromEntries([...Object.entries(profiles).filter(([key]) => key !== name), [name, clean]]));
    },
    deleteProfile(name) {
      writeProfiles((profiles) => Object.fromEntries(Object.entries(profiles).filter(([key]) => key !== name)));
    },
  };
}

function isUnparsable(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    JSON.parse(readFileSync(path, 'utf8'));
    return false;
  } catch {
    return true;
  }
}
