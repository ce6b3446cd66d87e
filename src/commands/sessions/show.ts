import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class SessionsShow extends Command {
  static override summary = 'Show one session: every call with its time, model, status, policy decisions, approval, latency, tokens, prompt and answer.';
  static override description =
    'The prompt (last user message) and answer are shown cut short, as recorded: masked text, never raw values. --json prints the whole ' +
    'session as the gateway answered (calls with request and response bodies and stream events). Someone else\'s session is "not found" (exit 66) unless you are an auditor.';

  static override examples = ['<%= config.bin %> sessions show ses_01J9Z8', '<%= config.bin %> sessions show ses_01J9Z8 --json', '<%= config.bin %> sessions show ses_01J9Z8 --raw'];

  static override args = {
    id: Args.string({ required: true, description: 'The session id (from `aigov sessions list`).' }),
  };

  static override flags = {
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the session as JSON on stdout.' }),
    raw: Flags.boolean({ summary: 'Show the requests as the clients sent them (raw copies, unmasked): auditors only, gateway with audit.raw_copy; the read is logged.', env: 'AIGOV_SESSIONS_RAW' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SessionsShow);
    await runCommand(async () => {
      const { openSessions } = await import('../../cli/sessions-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openSessions({ profile: flags.profile ?? defaultProfile() });
      // The text view reads shared bodies: an agent's session is not rebuilt into every call's full body.
      const detail = await client.get(args.id, { raw: flags.raw, sharedBodies: !flags.json });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(detail, null, 2)}\n`);
        return;
      }
      const { formatSessionDetail } = await import('../../cli/sessions-format.ts');
      if (flags.raw) {
        // The prompts as the clients sent them, where a raw copy exists (else as recorded).
        const calls = detail.calls.map((call) => {
          if (typeof call.raw_request_body !== 'string') return call;
          const { request_ref: _shared, ...rest } = call;
          return { ...rest, request_body: call.raw_request_body };
        });
        const copies = detail.calls.filter((c) => typeof c.raw_request_body === 'string').length;
        process.stdout.write(`Raw request copies (unmasked, as the clients sent them; this read is logged): ${copies} of ${detail.calls.length} calls.\n`);
        process.stdout.write(`${formatSessionDetail({ ...detail, calls }, Math.max(60, process.stdout.columns ?? 100))}\n`);
        return;
      }
      process.stdout.write(`${formatSessionDetail(detail, Math.max(60, process.stdout.columns ?? 100))}\n`);
    });
  }
}
