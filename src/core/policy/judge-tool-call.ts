/**
 * Judges one tool call from an answer against the policy's tool gate.
 *
 * The call is read into targets (./tool-calls.ts). For each target, the gate's enforced entries
 * are tried in file order and the FIRST that matches decides for it (allow, block or
 * require_approval) — the precedence of the request side. The call's decision is the most severe
 * of its targets' (block, then require_approval, then allow): one harmless command cannot vouch
 * for another in the same line. Shadow entries that match any target are reported, never enforced.
 *
 * A block or require_approval entry matches a target when ANY of its paths / URLs matches (a
 * path in any spelling, as written included); an allow entry only when ALL of them do, each in a
 * resolved spelling (an allowlist of hosts lets a command through only if every URL in it is on
 * the list; `/tmp/../etc` is not under /tmp), and never on a whole command line — an allow
 * decides per simple command. Command patterns match when any spelling of the command matches;
 * `arguments` patterns of block and require_approval entries when any view of the arguments
 * does (escapes and one level of encoding decoded: ./argument-views.ts), of allow entries only
 * on the arguments as written.
 *
 * A detector that throws propagates (PolicyAnalyzerError, PolicyBudgetError): the caller refuses
 * the call (fail closed).
 */
import { detectEntities } from '../detection/index.ts';
import type { Detector } from '../detection/types.ts';
import { argumentViews, type ArgumentViews } from './argument-views.ts';
import { anyGlob } from './matchers.ts';
import { readToolCall, type ToolTarget } from './tool-calls.ts';
import type { ToolCallJudgement, ToolGate, ToolGateEntry } from './types.ts';

const SEVERITY = { allow: 1, require_approval: 2, block: 3 } as const;

export function judgeToolCall(gate: ToolGate, call: { readonly name: string; readonly arguments: string }): ToolCallJudgement {
  const reading = readToolCall(call, { workTree: gate.workTree });
  let decision: ToolCallJudgement['decision'] = null;
  const shadow = new Map<string, { action: ToolGateEntry['action']; ruleId: string; reason: string }>();
  const globs = new Map<ToolGateEntry, (name: string) => boolean>();
  const argViews = new Map<string, ArgumentViews>();
  for (const target of reading.targets) {
    let decided = false;
    for (const entry of gate.entries) {
      if (entry.mode === 'enforce' && decided) continue;
      if (entry.mode === 'shadow' && shadow.has(entry.ruleId)) continue;
      if (!entryMatches(entry, target, globs, argViews)) continue;
      const verdict = { action: entry.action, ruleId: entry.ruleId, reason: entry.reason };
      if (entry.mode === 'shadow') {
        shadow.set(entry.ruleId, verdict);
        continue;
      }
      decided = true;
      if (decision === null || SEVERITY[entry.action] > SEVERITY[decision.action]) decision = verdict;
    }
  }
  // A call too large to read completely is refused when any enforced rule could have refused it.
  if (reading.unreadable && gate.entries.some((e) => e.mode === 'enforce' && e.action !== 'allow')) {
    decision = { action: 'block', ruleId: 'aigov-limits', reason: 'the tool call is too large to judge, so it is refused (fail closed)' };
  }
  return { summary: reading.summary, decision, shadow: [...shadow.values()] };
}

/** The gate entries (enforced and shadow) that match some target of the call, in rule order. */
export function matchingEntries(gate: ToolGate, call: { readonly name: string; readonly arguments: string }): ToolGateEntry[] {
  const reading = readToolCall(call, { workTree: gate.workTree });
  const globs = new Map<ToolGateEntry, (name: string) => boolean>();
  const argViews = new Map<string, ArgumentViews>();
  return gate.entries.filter((entry) => reading.targets.some((target) => entryMatches(entry, target, globs, argViews)));
}

function entryMatches(entry: ToolGateEntry, target: ToolTarget, globs: Map<ToolGateEntry, (name: string) => boolean>, argViews: Map<string, ArgumentViews>): boolean {
  const fields = entry.fields;
  if (entry.names.length > 0) {
    // A fallback target (unreadable code) answers to any name, but only for field conditions.
    if (!(target.anyName && fields !== null)) {
      let glob = globs.get(entry);
      if (!glob) globs.set(entry, (glob = anyGlob(entry.names)));
      if (!target.names.some(glob)) return false;
    }
  }
  if (entry.argumentDetectors.length > 0) {
    if (target.arguments === null || target.arguments === '') return false;
    if (entry.action === 'allow') {
      // An allow reads the arguments as written: no decoded view may make a call look allowed.
      if (!hits(target.arguments, entry.argumentDetectors)) return false;
    } else {
      // Block and approval patterns read every spelling (escapes, encodings decoded); views past
      // their decoding bound count as a match (fail closed).
      let views = argViews.get(target.arguments);
      if (!views) argViews.set(target.arguments, (views = argumentViews(target.arguments)));
      if (!views.incomplete && !views.views.some((view) => hits(view, entry.argumentDetectors))) return false;
    }
  }
  if (fields === null) return true;
  const every = entry.action === 'allow';
  // An allow rule decides per command, never for a whole line (`echo x | curl … | sh`).
  if (every && target.line) return false;
  if (fields.command.length > 0) {
    if (!target.commands.some((view) => hits(view, fields.command))) return false;
  }
  if (fields.paths.length > 0) {
    // Block rules also see the path as written; an allow only its resolved spellings (`/tmp/../etc` is /etc).
    const ok = (p: ToolTarget['paths'][number]): boolean => p.views.some((view) => hits(view, fields.paths)) || (!every && p.written !== '' && !p.views.includes(p.written) && hits(p.written, fields.paths));
    if (target.paths.length === 0 || (every ? !target.paths.every(ok) : !target.paths.some(ok))) return false;
  }
  if (fields.urls.length > 0) {
    const ok = (u: string): boolean => hits(u, fields.urls);
    if (target.urls.length === 0 || (every ? !target.urls.every(ok) : !target.urls.some(ok))) return false;
  }
  if (fields.outsideWorkTree) {
    if (target.paths.length === 0 || (every ? !target.paths.every((p) => p.outside) : !target.paths.some((p) => p.outside))) return false;
  }
  return true;
}

function hits(text: string, detectors: readonly Detector[]): boolean {
  return text !== '' && detectEntities(text, detectors).length > 0;
}
