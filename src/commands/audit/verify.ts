import { Command, Flags } from '@oclif/core';
import { renderCliError, runCommand } from '../../cli/run-command.ts';

export default class AuditVerify extends Command {
  static override summary = 'Prove the recordings were not edited: check the audit chain and its signed checkpoints.';
  static override description =
    'Opens the recording database (SQLite, or PostgreSQL with storage.driver postgres) read-only, recomputes every audit entry from the rows it covers and from the previous entry, ' +
    'checks each checkpoint signature (Ed25519), and names the first broken record: its seq, kind, call id and what is wrong ' +
    '(content changed, row or entry missing, order broken, signature invalid, rows inserted without an entry).\n\n' +
    'Exit codes: 0 intact, 65 broken or a signature invalid, 75 unsigned entries remain (only with --require-signed), ' +
    '66 the database cannot be read, 78 the key cannot be used, 64 no database given.';

  static override examples = [
    '<%= config.bin %> audit verify --config gateway.yaml',
    '<%= config.bin %> audit verify --db aigov.db --public-key audit-signing.pub --json',
    '<%= config.bin %> audit verify --config gateway.yaml --since 24h',
  ];

  static override flags = {
    config: Flags.string({ char: 'c', summary: 'Gateway configuration: its storage (SQLite path or PostgreSQL url) and audit.signing_key are used.', env: 'AIGOV_CONFIG' }),
    db: Flags.string({ summary: 'The SQLite recording database (overrides the configuration\'s storage.path).', env: 'AIGOV_AUDIT_DB' }),
    'public-key': Flags.string({ summary: 'Ed25519 public key (PEM) that checkpoints must be signed with.', env: 'AIGOV_AUDIT_PUBLIC_KEY' }),
    since: Flags.string({ summary: 'Only entries written since then: ISO date, epoch ms, or 90m / 24h / 7d ago.', env: 'AIGOV_AUDIT_SINCE' }),
    'require-signed': Flags.boolean({ summary: 'Fail when entries after the last signed checkpoint remain.', env: 'AIGOV_AUDIT_REQUIRE_SIGNED' }),
    json: Flags.boolean({ summary: 'Print the report as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AuditVerify);
    await runCommand(async () => {
      const { runAuditVerify, formatAuditReport } = await import('../../cli/audit-verify-service.ts');
      const outcome = await runAuditVerify({
        config: flags.config,
        db: flags.db,
        publicKey: flags['public-key'],
        since: flags.since,
        requireSigned: flags['require-signed'],
      });
      if (flags.json) {
        const error = outcome.error === null ? null : { code: outcome.error.code, message: outcome.error.message };
        process.stdout.write(`${JSON.stringify({ file: outcome.file, ...outcome.report, error }, null, 2)}\n`);
      } else {
        process.stdout.write(formatAuditReport(outcome));
      }
      if (outcome.error !== null) {
        const { text, exitCode } = renderCliError(outcome.error);
        process.stderr.write(`${text}\n`);
        process.exit(exitCode);
      }
    });
  }
}
