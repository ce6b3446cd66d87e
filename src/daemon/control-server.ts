/**
 * The daemon's control socket (0600, in the 0700 runtime dir) and its pid file, named for the
 * configuration it serves (`daemonFiles`: config dir and profile). One daemon per configuration:
 * starting while another answers on the socket is refused; files left by a dead daemon are
 * cleaned up.
 */
import { chmodSync } from 'node:fs';
import type net from 'node:net';
import { z } from 'zod';
import { AigovError, isAigovError } from '../core/errors.ts';
import { daemonFiles, type AccessTokenResponse, type DaemonFiles, type MintRunResponse, type StatusResponse } from './control-protocol.ts';
import { createControlServer } from './control-transport.ts';
import { acquireStartLock, checkSocketPath, cleanStaleFiles, ensureRuntimeDir, inspectDaemonFiles, removeQuietly, writePidFile } from './runtime-files.ts';
import { silentLogger, type DaemonLogger } from './daemon-log.ts';

/** Control requests are validated on the daemon side only (clients never load zod: start-up time). */
const ControlRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('status') }),
  z.object({ op: z.literal('mint-run'), label: z.string().max(4096).default('') }),
  z.object({ op: z.literal('revoke-run'), runKey: z.string().max(512) }),
  z.object({ op: z.literal('access-token'), renew: z.boolean().default(false) }),
  z.object({ op: z.literal('stop') }),
]);

export interface ControlHandlers {
  status(): StatusResponse;
  mintRun(label: string): MintRunResponse;
  revokeRun(runKey: string): boolean;
  /** The current access token (refreshed if need be; `renew` forces a refresh). */
  accessToken(renew: boolean): Promise<AccessTokenResponse>;
  /** Called after the `stop` answer went out. */
  stop(): void;
}

export interface ControlServerOptions {
  readonly runtimeDir: string;
  /** The configuration served: the canonical config dir and the profile (they name the files). */
  readonly configDir: string;
  readonly profile: string;
  /** The daemon's HTTP port, written to the pid file. */
  readonly port: number;
  readonly version: string;
  readonly startedAt?: number;
  readonly handlers: ControlHandlers;
  readonly logger?: DaemonLogger;
}

export interface ControlServer {
  readonly files: DaemonFiles;
  /** Stops listening and removes the socket and pid file (if still ours). Idempotent. */
  close(): Promise<void>;
}

export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const logger = options.logger ?? silentLogger;
  ensureRuntimeDir(options.runtimeDir);
  const files = daemonFiles(options.runtimeDir, options.configDir, options.profile);
  checkSocketPath(files);
  const release = await acquireStartLock(files.lockFile);
  let server: net.Server;
  try {
    const existing = await inspectDaemonFiles(files);
    if (existing.state === 'running') {
      throw new AigovError('AIGOV_E_DAEMON_RUNNING', { profile: options.profile, pid: existing.status.pid });
    }
    if (existing.state === 'stale') {
      logger.warn(`removing files left by a stale daemon (${existing.reason})`);
      cleanStaleFiles(files);
    }
    server = createControlServer(
      async (raw) => {
        const parsed = ControlRequestSchema.safeParse(raw);
        if (!parsed.success) return { reply: failure(new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'unknown control request' })) };
        const request = parsed.data;
        try {
          switch (request.op) {
            case 'status':
              return { reply: options.handlers.status() };
            case 'mint-run':
              return { reply: options.handlers.mintRun(request.label) };
            case 'revoke-run':
              return { reply: { ok: true, revoked: options.handlers.revokeRun(request.runKey) } };
            case 'access-token':
              return { reply: await options.handlers.accessToken(request.renew) };
            case 'stop':
              logger.info('stop requested over the control socket');
              return { reply: { ok: true }, afterReply: () => options.handlers.stop() };
          }
        } catch (error) {
          return { reply: failure(isAigovError(error) ? error : new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it hit an internal error' })) };
        }
      },
      () => logger.error('a control request failed'),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(files.socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(files.socket, 0o600);
    writePidFile(files.pidFile, { pid: process.pid, port: options.port, socket: files.socket, profile: options.profile, configDir: options.configDir, startedAt: options.startedAt ?? Date.now(), version: options.version });
  } finally {
    release();
  }
  let closed: Promise<void> | null = null;
  return {
    files,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // net.Server.close unlinks the socket itself; the pid file is ours to remove.
        removeQuietly(files.pidFile);
      });
      return closed;
    },
  };
}

function failure(error: AigovError): { ok: false; error: { code: string; message: string; hint: string; params: Readonly<Record<string, string | number>> } } {
  return { ok: false, error: { code: error.code, message: error.message, hint: error.hint, params: error.params } };
}
