/**
 * oclif's `command_not_found` hook (package.json oclif.hooks): a mistyped command gets one line,
 * a "Did you mean" with the closest command as users type it, and the usage exit code — not
 * oclif's "command sesions:list not found" (exit 2), and no prompt: scripts must not hang on it.
 * `aigov help [COMMAND]` shows the help, as `--help` does.
 */
import type { Hook } from '@oclif/core';
import { AigovError, quotedInput } from '../core/errors.ts';
import { closestCommand } from './command-suggestion.ts';
import { renderCliError } from './run-command.ts';

const hook: Hook.CommandNotFound = async function commandNotFound({ id, config }) {
  let words = id.split(':');
  if (words[0] === 'help') {
    const asked = words.slice(1).join(':');
    if (asked === '' || config.findCommand(asked) || config.findTopic(asked)) {
      const { loadHelpClass } = await import('@oclif/core');
      const Help = await loadHelpClass(config);
      await new Help(config, config.pjson.oclif.helpOptions).showHelp(words.slice(1));
      return;
    }
    words = words.slice(1); // `aigov help sesions`: the same answer as `aigov sesions`
  }
  const topics = new Set(config.topics.map((topic) => topic.name));
  const suggestion = closestCommand(words, [...config.commandIDs, ...topics]);
  // What the user typed up to where a command name ends: the words after it are its arguments.
  const shown = Math.max(suggestion?.split(' ').length ?? 1, topics.has(words[0] ?? '') ? 2 : 1);
  const error = new AigovError('AIGOV_E_UNKNOWN_COMMAND', {
    command: words.slice(0, shown).map((word) => quotedInput(word, 40).slice(1, -1)).join(' '),
    suggestion: suggestion === null ? '' : `Did you mean "aigov ${suggestion}"? `,
  });
  process.stderr.write(`${renderCliError(error).text}\n`);
  process.exit(error.exitCode);
};

export default hook;
