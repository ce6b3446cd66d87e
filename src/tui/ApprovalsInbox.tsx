/**
 * `aigov approvals`: the approver's live inbox. Pending approvals arrive over the gateway's event
 * stream without refreshing; decided and expired ones leave the pending list and stay below it,
 * marked. A detail pane shows the redacted preview, requester, rule, model, a live countdown and
 * the votes so far; `a`/`d` open a one-line reason prompt, `r` reconnects, `q` quits. A dropped
 * connection (gateway restarted, replica gone behind the load balancer) is retried by itself with
 * backoff while the list stays on screen marked "reconnecting…"; the watch resumes after the last
 * event it saw, so what was decided meanwhile arrives as events.
 *
 * Plain text and ANSI only (no mouse, no wide layout tricks), so it works over SSH; colours
 * degrade to nothing while the `›` marker still shows the selection. Loaded with `await import()`
 * only when the inbox runs. The client and the clock are props, so tests feed it events.
 */
import { Box, Text, render, useApp, useInput, useWindowSize, type Key } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ApprovalsClient, WatchStatus } from '../cli/approvals-service.ts';
import { wrapText } from '../cli/terminal-text.ts';
import {
  approvalsGiven,
  formatAge,
  fitColumns,
  formatColumns,
  formatCountdown,
  formatDecisionResult,
  formatExpiresIn,
  formatVotes,
  modelLabel,
  personLabel,
  personLong,
  remainingMs,
  terminalSafe,
} from '../cli/approvals-format.ts';
import { isAigovError } from '../core/errors.ts';
import type { ApprovalView } from '../protocol/approvals.ts';
import { EMPTY_INBOX, applyApproval, applySnapshot, moveSelection, selectedItem, visibleItems, type InboxItems } from './approvals-inbox-state.ts';

export type InboxClient = Pick<ApprovalsClient, 'watch' | 'approve' | 'deny' | 'get'>;

export interface ApprovalsInboxProps {
  readonly client: InboxClient;
  /** Who is signed in (the title line; "you approved" on approvals waiting for more votes). */
  readonly me?: { readonly subject: string; readonly email: string | null } | null;
  readonly gatewayUrl?: string;
  /** Clock (tests). */
  readonly now?: () => number;
  /** Milliseconds between redraws of the countdowns. */
  readonly tickMs?: number;
  /** Called on `q` / Ctrl-C; default: exit the Ink app. */
  readonly onQuit?: () => void;
}

type Mode =
  | { readonly kind: 'browse' }
  | { readonly kind: 'reason'; readonly decision: 'approve' | 'deny'; readonly id: string; readonly text: string }
  | { readonly kind: 'submitting'; readonly decision: 'approve' | 'deny'; readonly id: string };

interface StatusLine {
  readonly tone: 'info' | 'ok' | 'error';
  readonly text: string;
  readonly hint?: string;
}

type Connection =
  | { readonly state: 'connecting' }
  | { readonly state: 'live' }
  /** Connecting again, resuming after the last event seen: after a drop (`reason`), or asked (`r`: null). */
  | { readonly state: 'reconnecting'; readonly reason: string | null }
  /** Waiting `at` for the next attempt; `resuming`: it was live before (what it shows is kept, and caught up on). */
  | { readonly state: 'retrying'; readonly at: number; readonly reason: string; readonly resuming: boolean };

const RECONNECTING = 'Reconnecting…';
const TONE_COLOR = { info: undefined, ok: 'green', error: 'red' } as const;


/** Why the stream dropped, without the "Cannot reach the gateway at URL" every such error starts with. */
function dropReason(error: Error): string {
  return error.message.replace(/^Cannot reach the aigov gateway at \S+: /, '').replace(/\.$/, '');
}

function errorStatus(error: unknown): StatusLine {
  if (isAigovError(error)) return { tone: 'error', text: `✘ ${error.message}`, hint: error.hint };
  return { tone: 'error', text: `✘ ${error instanceof Error ? error.message : String(error)}` };
}

function ConnectionBadge({ connection }: { connection: Connection }) {
  switch (connection.state) {
    case 'live':
      return <Text color="green">● live</Text>;
    case 'connecting':
      return <Text color="yellow">○ connecting…</Text>;
    case 'reconnecting':
      return <Text color="yellow">○ reconnecting…</Text>;
    case 'retrying':
      return connection.resuming ? <Text color="red">○ reconnecting…</Text> : <Text color="red">○ offline</Text>;
  }
}

/** The line under the title: why the inbox is offline and when it tries again. */
function ConnectionDetail({ connection, now }: { connection: Connection; now: number }) {
  if (connection.state === 'reconnecting' && connection.reason !== null) {
    return (
      <Text color="yellow" wrap="truncate-end">
        Disconnected ({connection.reason}); reconnecting… what changed meanwhile follows
      </Text>
    );
  }
  if (connection.state !== 'retrying') return <Text> </Text>;
  return (
    <Text color="red" wrap="truncate-end">
      Disconnected ({connection.reason}); retrying in {Math.max(0, Math.ceil((connection.at - now) / 1000))}s · r to retry now
    </Text>
  );
}

function rowCells(view: ApprovalView, now: number): string[] {
  const mark = view.state === 'pending' ? ' ' : view.state === 'approved' ? '✔' : '✘';
  const when = view.state === 'pending' ? formatExpiresIn(view, now) : view.state;
  return [`${mark} ${terminalSafe(view.id)}`, personLabel(view.requester), terminalSafe(view.rule.id), modelLabel(view), when, formatVotes(view)];
}

function Detail({ view, me, now, width, previewRows, previewOffset }: { view: ApprovalView; me: ApprovalsInboxProps['me']; now: number; width: number; previewRows: number; previewOffset: number }) {
  const left = remainingMs(view, now);
  const groups = view.requester.groups.length > 0 ? ` (${terminalSafe(view.requester.groups.join(', '))})` : '';
  const preview = view.preview.trim() === '' ? ['(empty)'] : wrapText(terminalSafe(view.preview, { newlines: true }), Math.max(10, width - 4));
  const offset = Math.max(0, Math.min(previewOffset, preview.length - previewRows));
  const shown = preview.slice(offset, offset + previewRows);
  const below = preview.length - offset - shown.length;
  const decided = view.state !== 'pending';
  const voted = me ? view.votes.some((v) => v.by.sub === me.subject) : false;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold>{terminalSafe(view.id)}</Text>
        {'  '}
        {decided ? (
          <Text color={view.state === 'approved' ? 'green' : 'red'}>{view.state}</Text>
        ) : left > 0 ? (
          <Text>
            expires in <Text bold color={left < 60_000 ? 'red' : left < 300_000 ? 'yellow' : undefined}>{formatCountdown(left)}</Text>
          </Text>
        ) : (
          <Text color="red">expiring…</Text>
        )}
        {'  '}
        <Text>
          approvals {approvalsGiven(view)} of {view.approvers.required}
        </Text>
        {!decided && !view.can_decide ? <Text dimColor>{voted ? ' · you approved, waiting for others' : ' · you cannot decide this one'}</Text> : null}
      </Text>
      {formatColumns([
        ['Requester', `${personLong(view.requester)}${groups}`],
        ['Rule', `${terminalSafe(view.rule.id)}: ${terminalSafe(view.rule.reason)}`],
        ['Request', `${modelLabel(view)} · ${terminalSafe(view.endpoint)}${view.stream ? ' · streamed' : ''} · ${formatAge(now - Date.parse(view.created_at))} ago`],
        ['Approvers', terminalSafe(view.approvers.groups.join(', ')) || '(none)'],
      ]).map((line) => (
        <Text key={line} wrap="truncate-end">
          {line}
        </Text>
      ))}
      {view.votes.map((vote) => (
        <Text key={`${vote.by.sub}-${vote.at}`} wrap="truncate-end">
          <Text color={vote.decision === 'approve' ? 'green' : 'red'}>{vote.decision === 'approve' ? '✔ approved' : '✘ denied'}</Text> by {personLabel(vote.by)} {formatAge(now - Date.parse(vote.at))} ago
          {vote.reason ? `: “${terminalSafe(vote.reason)}”` : ''}
        </Text>
      ))}
      <Text dimColor>Preview (redacted){preview.length > previewRows ? ` · lines ${offset + 1}-${offset + shown.length} of ${preview.length}, PgUp/PgDn to scroll` : ''}</Text>
      {shown.map((line, i) => (
        <Text key={i} wrap="truncate-end">
          {'  │ '}
          {line}
        </Text>
      ))}
      {below > 0 ? <Text dimColor>{'  '}… {below} more line{below === 1 ? '' : 's'}</Text> : null}
    </Box>
  );
}

export function ApprovalsInbox({ client, me = null, gatewayUrl, now = Date.now, tickMs = 500, onQuit }: ApprovalsInboxProps) {
  const { exit } = useApp();
  const size = useWindowSize();
  const [items, setItemsState] = useState<InboxItems>(EMPTY_INBOX);
  const [mode, setModeState] = useState<Mode>({ kind: 'browse' });
  // Keys can arrive faster than React re-renders (typing, pasting, j then a): the input handler
  // reads and writes the latest state through these refs, never a stale closure.
  const itemsRef = useRef<InboxItems>(EMPTY_INBOX);
  const modeRef = useRef<Mode>({ kind: 'browse' });
  const updateItems = useCallback((update: (current: InboxItems) => InboxItems) => {
    itemsRef.current = update(itemsRef.current);
    setItemsState(itemsRef.current);
  }, []);
  const setMode = (next: Mode): void => {
    modeRef.current = next;
    setModeState(next);
  };
  const [status, setStatus] = useState<StatusLine | null>(null);
  const [connection, setConnection] = useState<Connection>({ state: 'connecting' });
  const [time, setTime] = useState(now);
  const [previewOffset, setPreviewOffset] = useState(0);
  const watchRef = useRef<{ reconnect(): void } | null>(null);
  const mounted = useRef(true);

  useEffect(() => {
    const timer = setInterval(() => setTime(now()), tickMs);
    return () => clearInterval(timer);
  }, [now, tickMs]);

  useEffect(() => {
    mounted.current = true;
    const controller = new AbortController();
    let wasLive = false;
    watchRef.current = client.watch(
      'decide',
      {
        onSnapshot: (approvals) => {
          // After a reconnection the gateway could not resume (it sent a snapshot instead of the
          // missed changes), what left the pending list meanwhile was decided or expired: ask how,
          // so it shows marked instead of silently vanishing.
          const ids = new Set(approvals.map((a) => a.id));
          const gone = itemsRef.current.pending.filter((v) => !ids.has(v.id)).slice(0, 20);
          updateItems((current) => applySnapshot(current, approvals));
          for (const view of gone) {
            client.get(view.id).then(
              (latest) => {
                if (!controller.signal.aborted && latest.state !== 'pending') updateItems((current) => applyApproval(current, latest));
              },
              () => undefined,
            );
          }
        },
        onApproval: (approval) => updateItems((current) => applyApproval(current, approval)),
        onStatus: (s: WatchStatus) => {
          if (s.state === 'live') wasLive = true;
          setConnection(
            s.state === 'retrying'
              ? { state: 'retrying', at: now() + s.inMs, reason: dropReason(s.error), resuming: wasLive }
              : s.state === 'reconnecting'
                ? { state: 'reconnecting', reason: s.error && dropReason(s.error) }
                : s,
          );
          if (s.state === 'live') setStatus((current) => (current?.text === RECONNECTING ? null : current));
        },
      },
      controller.signal,
    );
    return () => {
      mounted.current = false;
      controller.abort();
    };
  }, [client, now, updateItems]);

  const selected = selectedItem(items);
  const selectedId = selected?.id ?? null;
  useEffect(() => setPreviewOffset(0), [selectedId]);

  const quit = useCallback(() => (onQuit ? onQuit() : exit()), [onQuit, exit]);

  const submit = (decision: 'approve' | 'deny', id: string, reason: string): void => {
    setMode({ kind: 'submitting', decision, id });
    setStatus({ tone: 'info', text: `${decision === 'approve' ? 'Approving' : 'Denying'} ${id}…` });
    const call = decision === 'approve' ? client.approve(id, reason || undefined) : client.deny(id, reason || undefined);
    call.then(
      (view) => {
        if (!mounted.current) return;
        updateItems((current) => applyApproval(current, view));
        setStatus({ tone: 'ok', text: formatDecisionResult(view, decision) });
        setMode({ kind: 'browse' });
      },
      (error: unknown) => {
        if (!mounted.current) return;
        setStatus(errorStatus(error));
        setMode({ kind: 'browse' });
      },
    );
  };

  const handleKey = (input: string, key: Key): void => {
    const mode = modeRef.current;
    if (key.ctrl && input === 'c') {
      quit();
      return;
    }
    if (mode.kind === 'reason') {
      if (key.escape) {
        setMode({ kind: 'browse' });
        setStatus({ tone: 'info', text: 'Cancelled.' });
      } else if (key.return) {
        const reason = mode.text.trim();
        if (mode.decision === 'deny' && reason === '') {
          setStatus({ tone: 'error', text: 'A reason is required to deny: the requester is told why.' });
          return;
        }
        submit(mode.decision, mode.id, reason);
      } else if (key.backspace || key.delete) {
        setMode({ ...mode, text: [...mode.text].slice(0, -1).join('') });
      } else if (key.ctrl && input === 'u') {
        setMode({ ...mode, text: '' });
      } else if (input && !key.ctrl && !key.meta) {
        // Typed or pasted text; control characters (a pasted newline) become spaces.
        // eslint-disable-next-line no-control-regex
        setMode({ ...mode, text: (mode.text + input.replace(/[\u0000-\u001f\u007f]/g, ' ')).slice(0, 2000) });
      }
      return;
    }
    if (mode.kind === 'submitting') return;
    if (input === 'q') quit();
    else if (key.upArrow || input === 'k') updateItems((current) => moveSelection(current, -1));
    else if (key.downArrow || input === 'j') updateItems((current) => moveSelection(current, 1));
    else if (key.pageDown) setPreviewOffset((o) => o + 5);
    else if (key.pageUp) setPreviewOffset((o) => Math.max(0, o - 5));
    else if (input === 'r') {
      setStatus({ tone: 'info', text: RECONNECTING });
      watchRef.current?.reconnect();
    } else if (input === 'a' || input === 'd') {
      const selected = selectedItem(itemsRef.current);
      if (selected === null) {
        setStatus({ tone: 'info', text: 'Nothing selected.' });
        return;
      }
      if (selected.state !== 'pending') {
        setStatus({ tone: 'info', text: `${terminalSafe(selected.id)} is already ${selected.state}.` });
        return;
      }
      setStatus(null);
      setMode({ kind: 'reason', decision: input === 'a' ? 'approve' : 'deny', id: selected.id, text: '' });
    }
  };

  useInput((input, key) => {
    // Keys typed quickly (or over a slow SSH link) can arrive as one chunk: "ja", "afine\r".
    // Plain text is taken one character at a time, so each key acts in the mode the one before left.
    const special = key.ctrl || key.meta || key.escape || key.upArrow || key.downArrow || key.pageUp || key.pageDown || key.return || key.backspace || key.delete || key.tab;
    const chars = [...input];
    if (special || chars.length <= 1) {
      handleKey(input, key);
      return;
    }
    chars.forEach((char, i) => {
      const enter = char === '\r' || char === '\n';
      // A line break inside pasted text is not an Enter; one that ends the chunk is.
      if (enter && i === chars.length - 1) handleKey('', { ...key, return: true });
      else handleKey(enter ? ' ' : char, key);
    });
  });

  const width = Math.max(40, size.columns || 80);
  const rows = Math.max(16, size.rows || 24);
  const list = visibleItems(items);
  // Room: title 2, list header 1, separator 1, detail head ~5 + votes, preview label 1, footer 4.
  const listRows = Math.max(3, Math.min(list.length, Math.floor(rows / 3)));
  const selectedIndex = list.findIndex((v) => v.id === selectedId);
  const firstRow = Math.max(0, Math.min(selectedIndex - Math.floor(listRows / 2), list.length - listRows));
  const windowed = list.slice(firstRow, firstRow + listRows);
  // One column goes to the selection marker; requester, rule and model give way on narrow terminals.
  const table = formatColumns(fitColumns([['  ID', 'REQUESTER', 'RULE', 'MODEL', 'EXPIRES', 'VOTES'], ...windowed.map((v) => rowCells(v, time))], width - 1, [1, 2, 3]));
  const detailFixed = 9 + (selected?.votes.length ?? 0);
  const previewRows = Math.max(2, rows - 2 - 1 - Math.max(1, windowed.length) - 1 - detailFixed - 4);
  const pendingCount = items.pending.length;

  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate-end">
        <Text bold>aigov approvals</Text>
        {me ? ` · ${terminalSafe(me.email ?? me.subject)}` : ''}
        {gatewayUrl ? ` · ${gatewayUrl}` : ''} · {pendingCount} pending · <ConnectionBadge connection={connection} />
      </Text>
      <ConnectionDetail connection={connection} now={time} />
      {list.length === 0 ? (
        <Text dimColor>{connection.state === 'live' ? 'No pending approvals for you to decide. New ones appear here as they arrive.' : 'Waiting for the gateway…'}</Text>
      ) : (
        <Box flexDirection="column">
          <Text dimColor wrap="truncate-end">
            {' '}
            {table[0]}
          </Text>
          {windowed.map((view, i) => {
            const isSelected = view.id === selectedId;
            const line = table[i + 1] ?? '';
            return (
              <Text key={view.id} wrap="truncate-end" inverse={isSelected} dimColor={!isSelected && view.state !== 'pending'} bold={isSelected}>
                {isSelected ? '›' : ' '}
                {line}
              </Text>
            );
          })}
        </Box>
      )}
      <Text dimColor>{'─'.repeat(Math.min(width, 100))}</Text>
      {selected ? <Detail view={selected} me={me} now={time} width={width} previewRows={previewRows} previewOffset={previewOffset} /> : <Text> </Text>}
      <Text> </Text>
      <Text color={status ? TONE_COLOR[status.tone] : undefined} wrap="truncate-end">
        {status ? status.text : ' '}
      </Text>
      <Text dimColor wrap="truncate-end">
        {status?.hint ? `  ${status.hint}` : ' '}
      </Text>
      {mode.kind === 'reason' ? (
        <Text wrap="truncate-start">
          <Text bold color={mode.decision === 'approve' ? 'green' : 'red'}>
            {mode.decision === 'approve' ? 'Approve' : 'Deny'} {terminalSafe(mode.id)}
          </Text>{' '}
          — reason{mode.decision === 'approve' ? ' (optional)' : ''}: {mode.text}
          <Text inverse> </Text>
          <Text dimColor> Enter submit · Esc cancel</Text>
        </Text>
      ) : (
        <Text dimColor wrap="truncate-end">
          {mode.kind === 'submitting' ? 'sending…' : 'a approve · d deny · ↑↓/jk select · PgUp/PgDn preview · r reconnect · q quit'}
        </Text>
      )}
    </Box>
  );
}

/** Runs the inbox full-screen on the terminal until the user quits. */
export async function runApprovalsInbox(props: Omit<ApprovalsInboxProps, 'onQuit'>): Promise<void> {
  const instance = render(<ApprovalsInbox {...props} />, { exitOnCtrlC: false, patchConsole: false, interactive: true, alternateScreen: true });
  await instance.waitUntilExit();
}
