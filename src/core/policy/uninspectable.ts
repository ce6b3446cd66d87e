/**
 * Parts of a request the gateway cannot read — images, documents that are not text (a PDF, an
 * Office file, any binary), files it is given only by reference (a file id, a URL it does not
 * fetch), audio — and what the policy's `uninspectable` setting makes of them. No rule can scan
 * such a part, so the setting decides for it: each kind is allowed, blocked or held for approval,
 * on top of the rules (the stricter outcome wins; an allow rule does not lift it).
 *
 * A decision names the setting as a rule id (`uninspectable.documents`); rule ids cannot take
 * that form (the schema refuses them), so a decision is never mistaken for a rule's.
 */
import type { ContentPart, NormalizedRequest } from '../events.ts';
import type { ApprovalSpec, PolicyDocument, TerminalAction, UninspectableKind, UninspectableSpec } from './types.ts';
import { UNINSPECTABLE_KINDS } from './types.ts';

/** The rule id a decision of the setting carries: `uninspectable.<kind>`. */
export const UNINSPECTABLE_PREFIX = 'uninspectable.';

/** Allowed, blocked or held: what the file's `uninspectable` says when it says nothing. */
export const DEFAULT_UNINSPECTABLE: UninspectableSpec = Object.freeze({ images: 'allow', documents: 'allow', files: 'allow', audio: 'allow' });

/** The kind of a part the gateway cannot read; null for a part it reads (text, tool calls, a text document). */
export function uninspectableKind(part: ContentPart): UninspectableKind | null {
  switch (part.type) {
    case 'image':
      return 'images';
    case 'audio':
      return 'audio';
    case 'file':
      if (part.text !== undefined) return null;
      return part.source === 'reference' ? 'files' : 'documents';
    default:
      return null;
  }
}

/** The parts of each kind the gateway cannot read, by kind (kinds absent from the request are left out). */
export function countUninspectable(request: NormalizedRequest): Map<UninspectableKind, number> {
  const counts = new Map<UninspectableKind, number>();
  for (const message of request.messages) {
    for (const part of message.parts) {
      const kind = uninspectableKind(part);
      if (kind !== null) counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
  }
  return counts;
}

export interface UninspectableDecision {
  readonly ruleId: string;
  readonly kind: UninspectableKind;
  readonly action: 'block' | 'require_approval';
  readonly count: number;
  readonly reason: string;
}

/**
 * The setting's decisions on a request: one per kind it carries that the setting does not allow,
 * block before require_approval (the stricter first). Empty, without looking at a part, when the
 * setting allows every kind.
 */
export function judgeUninspectable(spec: UninspectableSpec, request: NormalizedRequest): UninspectableDecision[] {
  if (UNINSPECTABLE_KINDS.every((kind) => spec[kind] === 'allow')) return [];
  const out: UninspectableDecision[] = [];
  for (const [kind, count] of countUninspectable(request)) {
    const action = spec[kind];
    if (action === 'allow') continue;
    out.push({ ruleId: `${UNINSPECTABLE_PREFIX}${kind}`, kind, action, count, reason: describe(kind, count) });
  }
  return out.sort((a, b) => SEVERITY[b.action] - SEVERITY[a.action] || UNINSPECTABLE_KINDS.indexOf(a.kind) - UNINSPECTABLE_KINDS.indexOf(b.kind));
}

/** How strict a terminal outcome is: the stricter of the rules' and the setting's wins. */
export const SEVERITY: Readonly<Record<TerminalAction, number>> = { allow: 0, require_approval: 1, block: 2 };

function describe(kind: UninspectableKind, n: number): string {
  const some = (one: string, many: string): string => (n === 1 ? one : `${n} ${many}`);
  switch (kind) {
    case 'images':
      return `the request carries ${some('an image', 'images')}, which the gateway cannot inspect`;
    case 'documents':
      return `the request carries ${some('a document', 'documents')} the gateway cannot read as text (a PDF or another binary file)`;
    case 'files':
      return `the request carries ${some('a file', 'files')} given by id or URL, which the gateway does not fetch`;
    case 'audio':
      return `the request carries ${some('an audio input', 'audio inputs')}, which the gateway cannot inspect`;
  }
}

/**
 * Who approves a request held by `ruleId`: the rule's own `approval`, for the uninspectable
 * setting its `approval`, else the policy's (the default action's too); null when none is set.
 */
export function approvalFor(document: PolicyDocument, ruleId: string): ApprovalSpec | null {
  if (ruleId.startsWith(UNINSPECTABLE_PREFIX)) return document.uninspectable.approval ?? document.approval ?? null;
  const rule = document.rules.find((r) => r.id === ruleId);
  return rule?.approval ?? document.approval ?? null;
}
