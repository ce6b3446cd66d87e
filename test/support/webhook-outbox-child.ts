/**
 * A gateway process's webhook side, alone, for the test that kills it: opens the PostgreSQL
 * approval store at argv[2], starts a notifier posting to the receiver at argv[3] with a lease of
 * argv[4] ms, raises one notice (approval id argv[5]) and prints `ready` on stdout. Runs until
 * killed.
 *
 *   node test/support/webhook-outbox-child.ts postgres://… http://127.0.0.1:P/… 1500 apr_x
 */
import { pino } from 'pino';
import { createWebhookNotifier } from '../../src/gateway/approvals/webhook-notifier.ts';
import { openPostgresApprovalStore } from '../../src/store/postgres/pg-approval-store.ts';
import { receiverHook, sampleNotice } from './webhook-receivers.ts';

const [databaseUrl, receiverUrl, leaseMs, approvalId] = process.argv.slice(2);
if (!databaseUrl || !receiverUrl || !leaseMs || !approvalId) {
  process.stderr.write('usage: node test/support/webhook-outbox-child.ts DATABASE_URL RECEIVER_URL LEASE_MS APPROVAL_ID\n');
  process.exit(2);
}
const store = await openPostgresApprovalStore({ url: databaseUrl, poolSize: 1, onError: () => {} });
const notifier = createWebhookNotifier({ webhooks: [receiverHook(receiverUrl, { timeout: '60s' })], logger: pino({ level: 'silent' }), outbox: store.outbox, leaseMs: Number(leaseMs), pollMs: 60_000 });
notifier.notify(sampleNotice(approvalId));
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
