import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class SessionsExport extends Command {
  static override summary = 'Export one session as jsonl (a line per session, call and stream event) or json, to a file or stdout.';
  static override description =
    'jsonl: the session line, then each call followed by its stream events (src/protocol/sessions.ts ExportLine). json: the same document as ' +
    '`aigov sessions show --json`. The export streams; with --out it is written to a temporary file and renamed only when complete, so a ' +
    'file at that path is always a whole export.';

  static override examples = [
    '<%= config.bin %> sessions export ses_01J9Z8 --format jsonl --out session.jsonl',
    '<%= config.bin %> sessions export ses_01J9Z8 --format json | jq .calls[0].decisions',
    '<%= config.bin %> sessions export ses_01J9Z8 --raw --out raw-session.jsonl',
  ];

  static override args = {
    id: Args.string({ required: true, description: 'The session id (from `aigov sessions list`).' }),
  };

  static override flags = {
    format: Flags.string({ summary: 'Export format.', options: ['jsonl', 'json'], default: 'jsonl', env: 'AIGOV_EXPORT_FORMAT' }),
    out: Flags.string({ summary: 'Write to this file instead of stdout.' }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    raw: Flags.boolean({ summary: 'Include each call\'s raw request copy (raw_request_body): auditors only, gateway with audit.raw_copy; the read is logged.', env: 'AIGOV_SESSIONS_RAW' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SessionsExport);
    await runCommand(async () => {
      const { exportSession } = await import('../../cli/sessions-export.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const format = flags.format === 'json' ? 'json' : 'jsonl';
      const written = await exportSession({ id: args.id, format, out: flags.out ?? null, profile: flags.profile ?? defaultProfile(), raw: flags.raw });
      // stderr, like every other progress line: stdout stays free for the export itself.
      if (written) process.stderr.write(`Exported session ${args.id} as ${format} to ${written.file} (${written.bytes} bytes).\n`);
    });
  }
}
