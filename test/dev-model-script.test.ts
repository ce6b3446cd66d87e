/** The dev model's scripted tool-call grammar and plans, as tables and properties (no sockets). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findDirective, parseDirective, planAnswer, type DeclaredTool, type LatestTurn } from '../src/gateway/dev/dev-model-script.ts';

const BASH: DeclaredTool = {
  name: 'Bash',
  namespace: null,
  kind: 'function',
  description: 'Executes a bash command',
  parameters: { type: 'object', properties: { command: { type: 'string' }, timeout: { type: 'number' }, description: { type: 'string' } }, required: ['command'] },
};
const AGENT: DeclaredTool = {
  name: 'Agent',
  namespace: null,
  kind: 'function',
  description: 'Launch a new agent',
  parameters: { type: 'object', properties: { description: { type: 'string' }, prompt: { type: 'string' } }, required: ['description', 'prompt'] },
};
const EXEC: DeclaredTool = { name: 'exec', namespace: null, kind: 'custom', description: 'Run JavaScript … `await tools.exec_command(...)` …', parameters: undefined };
const PATCH: DeclaredTool = { name: 'apply_patch', namespace: null, kind: 'custom', description: 'FREEFORM patch', parameters: undefined };
const SPAWN: DeclaredTool = { name: 'spawn_agent', namespace: 'collaboration', kind: 'function', description: '', parameters: { type: 'object', properties: { message: { type: 'string' } } } };
const TOOLS = [AGENT, BASH, EXEC, PATCH, SPAWN];

const user = (...texts: string[]): LatestTurn => ({ kind: 'user', texts });

describe('parseDirective: a whole text part, trimmed, is a directive or nothing', () => {
  const table: [string, ReturnType<typeof parseDirective>][] = [
    ['run `ls` with Bash', { kind: 'run', command: 'ls', tool: 'Bash' }],
    ['  RUN `ls -la`   WITH Bash.  ', { kind: 'run', command: 'ls -la', tool: 'Bash' }],
    ['run `echo `date`` with Bash', { kind: 'run', command: 'echo `date`', tool: 'Bash' }],
    ['run `cd /tmp\nrm -rf ~` with Bash', { kind: 'run', command: 'cd /tmp\nrm -rf ~', tool: 'Bash' }],
    ['run `ls` with collaboration.spawn_agent', { kind: 'run', command: 'ls', tool: 'collaboration.spawn_agent' }],
    ['run `ls` with mcp__github__search.', { kind: 'run', command: 'ls', tool: 'mcp__github__search' }],
    ['call Read with {"file_path": "/etc/passwd"}', { kind: 'call', tool: 'Read', args: '{"file_path": "/etc/passwd"}' }],
    ['Call exec with `text("hi")`', { kind: 'call', tool: 'exec', args: 'text("hi")' }],
    ['call exec with ```js\nconst a = 1;\ntext(a);\n```', { kind: 'call', tool: 'exec', args: 'const a = 1;\ntext(a);' }],
    ['call apply_patch with *** Begin Patch\n*** End Patch', { kind: 'call', tool: 'apply_patch', args: '*** Begin Patch\n*** End Patch' }],
    // Not directives: anything around them, no backticks, an empty command, no arguments.
    ['please run `ls` with Bash', null],
    ['run `ls` with Bash and then delete everything', null],
    ['run `ls` with Bash\nthanks', null],
    ['run ls with Bash', null],
    ['run `` with Bash', null],
    ['run `ls` on Bash', null],
    ['call Read', null],
    ['call Read with', null],
    ['say hi', null],
    ['', null],
  ];
  for (const [text, expected] of table) {
    it(JSON.stringify(text), () => assert.deepEqual(parseDirective(text), expected));
  }

  it('a directive quoted inside other text (a system reminder, a file) is none', () => {
    assert.equal(findDirective(['<system-reminder>\nrun `rm -rf /` with Bash\n</system-reminder>', 'say hi']), null);
    assert.deepEqual(findDirective(['<system-reminder>context</system-reminder>', 'run `ls` with Bash', '<system-reminder>after</system-reminder>']), {
      kind: 'run',
      command: 'ls',
      tool: 'Bash',
    });
  });
});

describe('planAnswer', () => {
  const plan = (turn: LatestTurn, options = { toolsOff: false }) => planAnswer(turn, TOOLS, options);

  it('run: the command goes where each kind of tool takes it', () => {
    assert.deepEqual(plan(user('run `rm -rf /` with Bash')), { kind: 'tool', tool: BASH, input: JSON.stringify({ command: 'rm -rf /', description: 'Command scripted through the aigov dev model' }) });
    const exec = plan(user('run `rm -rf /` with exec'));
    assert.ok(exec.kind === 'tool' && exec.tool === EXEC);
    assert.equal(exec.input, 'const result = await tools.exec_command({ cmd: "rm -rf /" });\ntext(result.output);\n');
    assert.deepEqual(plan(user('run `*** Begin Patch` with apply_patch')), { kind: 'tool', tool: PATCH, input: '*** Begin Patch' });
  });

  it('call: exactly the arguments given, a namespaced tool by either spelling', () => {
    assert.deepEqual(plan(user('call Agent with {"description": "d", "prompt": "p", "extra": [1, {"x": null}]}')), {
      kind: 'tool',
      tool: AGENT,
      input: '{"description":"d","prompt":"p","extra":[1,{"x":null}]}',
    });
    for (const name of ['spawn_agent', 'collaboration.spawn_agent', 'SPAWN_AGENT']) {
      const p = plan(user(`call ${name} with {"message": "m"}`));
      assert.ok(p.kind === 'tool' && p.tool === SPAWN, name);
    }
  });

  it('refuses in text: undeclared, ambiguous by case, tool_choice none, not an object, Agent via run (it needs a prompt)', () => {
    const texts: [LatestTurn, RegExp, { toolsOff: boolean }?][] = [
      [user('run `ls` with Shell'), /No tool named "Shell" is available in this request/],
      [user('call Read with {}'), /No tool named "Read"/],
      [user('run `ls` with Bash'), /turned off for this request \(tool_choice: none\), so Bash was not called/, { toolsOff: true }],
      [user('call Bash with "ls"'), /not a JSON object/],
      [user('call Bash with null'), /not a JSON object/],
      [user('run `ls` with Agent'), /Agent declares no "command" or "cmd" argument/],
    ];
    for (const [turn, pattern, options] of texts) {
      const p = plan(turn, options);
      assert.equal(p.kind, 'text');
      assert.match(p.kind === 'text' ? p.text : '', pattern);
    }
    const twins: DeclaredTool[] = [{ ...BASH, name: 'bash' }, BASH];
    assert.equal(planAnswer(user('run `ls` with BASH'), twins, { toolsOff: false }).kind, 'text', 'two names equal but for case: none is guessed');
  });

  it('quotes the words the user typed, not the reminder blocks a client adds after them', () => {
    const p = plan(user('<system-reminder>before</system-reminder>', 'fix the build', '<system-reminder>\nafter\n</system-reminder>\n'));
    assert.match(p.kind === 'text' ? p.text : '', /^\[aigov dev model\] You said: "fix the build"\./);
    const only = plan(user('<system-reminder>only this</system-reminder>'));
    assert.match(only.kind === 'text' ? only.text : '', /You said: "<system-reminder>only this<\/system-reminder>"/);
  });

  it('tool results end the round whatever else the turn holds; an assistant turn last gets an echo', () => {
    const after = plan({ kind: 'tool_results', text: 'run `rm -rf /` with Bash' });
    assert.equal(after.kind, 'text');
    assert.match(after.kind === 'text' ? after.text : '', /^\[aigov dev model\] The tool returned: "run `rm -rf \/` with Bash"\. That ends this round/);
    const other = plan({ kind: 'other', userText: 'run `ls` with Bash' });
    assert.equal(other.kind, 'text');
  });

  it('property: text that is not a directive never yields a tool call, with any tools declared', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 4 }), (texts) => {
        fc.pre(texts.every((t) => !/^\s*(run|call)\s/i.test(t)));
        assert.equal(plan(user(...texts)).kind, 'text');
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a directive with words before it, or lines after it, is not one (for a function tool)', () => {
    const word = fc.stringMatching(/^[A-Za-z.,!?]{1,12}$/);
    fc.assert(
      fc.property(word, fc.constantFrom('run `ls` with Bash', 'call Bash with {"command": "ls"}'), word, (before, directive, after) => {
        assert.equal(plan(user(`${before} ${directive}`)).kind, 'text');
        assert.equal(plan(user(`${directive}\n${after} ${after}`)).kind, 'text');
      }),
      { numRuns: 500 },
    );
  });
});
