import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class DaemonStart extends Command {
  static override summary = "Start the profile's aigov daemon in the background (does nothing if it runs).";
  static override description =
    'The daemon listens on 127.0.0.1 for programs started with `aigov run`, holds your access token in memory and forwards their ' +
    'calls to the gateway. `aigov run` starts it on demand; this command starts it ahead of time. Prints its pid and port.';

  static override examples = ['<%= config.bin %> daemon start', '<%= config.bin %> daemon start --profile work --json'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile whose daemon to start (default "default").', env: 'AIGOV_PROFILE' }),
    'ca-file': Flags.string({ summary: 'PEM file with extra CA certificates to trust for the gateway and IdP.', env: 'AIGOV_CA_FILE' }),
    json: Flags.boolean({ summary: 'Print the daemon status as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStart);
    await runCommand(async () => {
      const { connectDaemon } = await import('../../daemon/daemon-client.ts');
      const { daemonReport, formatDaemonReport } = await import('../../daemon/daemon-report.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const profile = flags.profile ?? defaultProfile();
      const env = flags['ca-file'] ? { ...process.env, AIGOV_CA_FILE: flags['ca-file'] } : process.env;
      const client = await connectDaemon(profile, { start: true, env });
      const status = await client.status();
      const report = daemonReport(profile, { state: 'running', status });
      if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, started: client.started }, null, 2)}\n`);
      else process.stdout.write(`${client.started ? 'started' : 'already running'}: pid ${status.pid}, port ${status.port}\n${formatDaemonReport(report)}\n`);
    });
  }
}
