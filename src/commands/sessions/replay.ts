import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class SessionsReplay extends Command {
  static override summary = 'Replay a recorded session: its calls, policy decisions, approvals and answers at their original pace.';
  static override description =
    'In a terminal: the calls on a timeline; for the current call its policy decisions, the approval record, the prompt as recorded ' +
    '(masked text highlighted) and the answer re-streamed at the pace it was sent. Keys: space pause/resume, ←/→ previous/next call, ' +
    '+/- speed (0.25× … 16×), ↑/↓ scroll the prompt, q quit. Without a terminal (or with --no-tty) it prints the session as a plain-text ' +
    'transcript and exits. You can replay your own sessions; auditors any (each of their reads is recorded).';

  static override examples = [
    '<%= config.bin %> sessions replay ses_01J9Z8',
    '<%= config.bin %> sessions replay ses_01J9Z8 --speed 4',
    '<%= config.bin %> sessions replay ses_01J9Z8 --no-tty > transcript.txt',
  ];

  static override args = {
    id: Args.string({ required: true, description: 'The session id (from `aigov sessions list`).' }),
  };

  static override flags = {
    speed: Flags.string({ summary: 'Starting speed, 0.25 to 16 (default 1).', env: 'AIGOV_REPLAY_SPEED' }),
    tty: Flags.boolean({
      allowNo: true,
      summary: 'The terminal UI (--tty) or the plain transcript (--no-tty); default: the UI when stdin and stdout are terminals.',
      env: 'AIGOV_REPLAY_TTY',
    }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SessionsReplay);
    const terminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    if (flags.tty === true && !terminal) {
      process.stderr.write(
        'aigov: `aigov sessions replay --tty` needs a terminal (stdin and stdout).\n' +
          '  hint: leave out --tty to print the session as a plain transcript.\n',
      );
      process.exit(64);
    }
    await runCommand(async () => {
      const { parseSpeed } = await import('../../cli/replay-player.ts');
      const speed = parseSpeed(flags.speed);
      const { openSessions } = await import('../../cli/sessions-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openSessions({ profile: flags.profile ?? defaultProfile() });
      const detail = await client.get(args.id);
      const { buildTimeline } = await import('../../cli/replay-model.ts');
      const timeline = buildTimeline(detail);
      if (!(flags.tty ?? terminal)) {
        const { formatTranscript } = await import('../../cli/replay-transcript.ts');
        process.stdout.write(formatTranscript(timeline));
        return;
      }
      // https://no-color.org: Ink's colour library only knows FORCE_COLOR (read when it loads, just below).
      if (process.env.NO_COLOR && !('FORCE_COLOR' in process.env)) process.env.FORCE_COLOR = '0';
      const { runSessionReplay } = await import('../../tui/SessionReplay.tsx');
      await runSessionReplay({ timeline, speed });
    });
  }
}
