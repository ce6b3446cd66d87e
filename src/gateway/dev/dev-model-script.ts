/**
 * What the aigov dev model answers, decided without I/O: the scripted tool-call grammar and the
 * texts it answers with. The wire formats (Anthropic messages, OpenAI chat completions, Responses)
 * live in dev-model.ts; each reduces its request to the latest turn and the declared tools, and
 * renders the {@link DevPlan} this module returns.
 *
 * The dev model never invents a tool call. It calls a tool only when one text part of the latest
 * user turn, trimmed, is exactly one of these directives (keywords in any case):
 *
 *   run `COMMAND` with TOOL      one call of TOOL with COMMAND as its command:
 *                                  - a function tool whose parameters declare `command` or `cmd`
 *                                    gets `{"command": COMMAND}` / `{"cmd": COMMAND}` (an array-typed
 *                                    one gets ["bash", "-lc", COMMAND]); a declared `description`
 *                                    property is filled too (Claude Code's Bash);
 *                                  - Codex's code-mode custom tool (`exec`, whose description offers
 *                                    `tools.exec_command`) gets JavaScript that calls
 *                                    `tools.exec_command({ cmd: COMMAND })`;
 *                                  - any other custom (freeform) tool gets COMMAND as its input.
 *                                COMMAND is everything between the first and the last backtick, so
 *                                it may hold backticks and newlines. A trailing "." is allowed.
 *   call TOOL with ARGUMENTS     one call of TOOL with exactly these arguments: a JSON object for a
 *                                function tool, the raw input for a custom tool. ARGUMENTS may be
 *                                wrapped in `backticks` or a ``` fence, which are removed.
 *
 * TOOL must be a tool the request declares (exact name, else the one name equal ignoring case;
 * a Responses tool in a namespace other than `functions` also as `namespace.name`). Anything else
 * is answered in text: an undeclared tool, tool_choice none, arguments that are not a JSON object,
 * a `run` for a tool without a command argument or with other required arguments.
 *
 * One round only: when the latest turn carries tool results, the answer is text that quotes the
 * start of the results and says the round is over, never another call. So an agent driving the
 * dev model stops after at most one tool call per message of its user.
 */

export const DEV_MODEL_NOTICE = 'This answer comes from the built-in aigov dev model; no real LLM was called.';
const QUOTE_CHARS = 200;
const LISTED_TOOLS = 12;

export interface DeclaredTool {
  /** The name the call must carry. */
  readonly name: string;
  /** A Responses namespace other than the default `functions`, which the call carries too. */
  readonly namespace: string | null;
  /** Function tools take a JSON object; custom (freeform) tools take raw text. */
  readonly kind: 'function' | 'custom';
  /** The JSON schema of a function tool's arguments (undefined when none was declared). */
  readonly parameters: unknown;
  readonly description: string;
}

/** The conversation's last turn, as the dev model reads it. */
export type LatestTurn =
  /** Tool results (Anthropic tool_result, OpenAI role tool, Responses *_call_output): their text. */
  | { readonly kind: 'tool_results'; readonly text: string }
  /** A user turn: its text parts (a plain string content is one part). */
  | { readonly kind: 'user'; readonly texts: readonly string[] }
  /** Anything else (an assistant prefill, nothing): the last user text, to quote. */
  | { readonly kind: 'other'; readonly userText: string };

export type DevPlan =
  | { readonly kind: 'text'; readonly text: string }
  /** `input`: the arguments as JSON object text (function tools) or the raw input (custom tools). */
  | { readonly kind: 'tool'; readonly tool: DeclaredTool; readonly input: string };

export type Directive =
  | { readonly kind: 'run'; readonly command: string; readonly tool: string }
  | { readonly kind: 'call'; readonly tool: string; readonly args: string };

export interface PlanOptions {
  /** The request turned tool calls off (tool_choice none). */
  readonly toolsOff: boolean;
}

const TOOL_NAME = String.raw`([A-Za-z0-9_.:-]+?)`;
const RUN = new RegExp(String.raw`^run\s+\x60([\s\S]+)\x60\s+with\s+${TOOL_NAME}\s*\.?$`, 'i');
const CALL = new RegExp(String.raw`^call\s+${TOOL_NAME}\s+with\s+([\s\S]+)$`, 'i');

/** The directive one text part is, when the whole part (trimmed) is one; else null. */
export function parseDirective(text: string): Directive | null {
  const trimmed = text.trim();
  const run = RUN.exec(trimmed);
  if (run) return { kind: 'run', command: run[1]!, tool: run[2]! };
  const call = CALL.exec(trimmed);
  if (call) return { kind: 'call', tool: call[1]!, args: unwrapCode(call[2]!.trim()) };
  return null;
}

/** `x` → x; ```lang\nx\n``` → x; anything else unchanged. */
function unwrapCode(text: string): string {
  const fence = /^```[^\n`]*\n([\s\S]*?)\n?```$/.exec(text);
  if (fence) return fence[1]!;
  const tick = /^`([^`]+)`$/.exec(text);
  return tick ? tick[1]! : text;
}

/**
 * The words the user typed, to quote: the last non-blank part that is not one whole
 * `<tag>…</tag>` block a client added (Claude Code's `<system-reminder>`), else the last non-blank.
 */
function typedText(texts: readonly string[]): string {
  const parts = texts.filter((t) => t.trim() !== '');
  return parts.findLast((t) => !/^\s*<([A-Za-z][\w-]*)>[\s\S]*<\/\1>\s*$/.test(t)) ?? parts.at(-1) ?? '';
}

/** The last text part that is a directive: so a reminder a client adds around the user's words never is one. */
export function findDirective(texts: readonly string[]): Directive | null {
  for (let i = texts.length - 1; i >= 0; i--) {
    const directive = parseDirective(texts[i]!);
    if (directive) return directive;
  }
  return null;
}

export function planAnswer(turn: LatestTurn, tools: readonly DeclaredTool[], options: PlanOptions): DevPlan {
  if (turn.kind === 'tool_results') return text(roundOverAnswer(turn.text));
  if (turn.kind === 'other') return text(echoAnswer(turn.userText, false));
  const userText = typedText(turn.texts);
  const directive = findDirective(turn.texts);
  if (!directive) return text(echoAnswer(userText, tools.length > 0));
  const tool = findTool(tools, directive.tool);
  if (!tool) return text(notDeclaredAnswer(directive.tool, tools));
  if (options.toolsOff) return text(say(`Tool calls are turned off for this request (tool_choice: none), so ${tool.name} was not called.`));
  if (directive.kind === 'call') {
    if (tool.kind === 'custom') return { kind: 'tool', tool, input: directive.args };
    let args: unknown;
    try {
      args = JSON.parse(directive.args);
    } catch {
      args = undefined;
    }
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      return text(say(`The arguments for ${tool.name} are not a JSON object, so no tool was called. Write them as: call ${tool.name} with {"name": "value"}.`));
    }
    return { kind: 'tool', tool, input: JSON.stringify(args) };
  }
  return runPlan(tool, directive.command);
}

function runPlan(tool: DeclaredTool, command: string): DevPlan {
  if (tool.kind === 'custom') {
    return { kind: 'tool', tool, input: offersExecCommand(tool.description) ? execCommandSource(command) : command };
  }
  const schema = isObject(tool.parameters) ? tool.parameters : {};
  const properties = isObject(schema.properties) ? schema.properties : {};
  const key = 'command' in properties ? 'command' : 'cmd' in properties ? 'cmd' : null;
  if (key === null) {
    return text(say(`${tool.name} declares no "command" or "cmd" argument, so no tool was called. Give its arguments yourself: call ${tool.name} with {…}.`));
  }
  const args: Record<string, unknown> = { [key]: typeOf(properties[key]) === 'array' ? ['bash', '-lc', command] : command };
  if (typeOf(properties.description) === 'string' && !('description' in args)) args.description = 'Command scripted through the aigov dev model';
  const required = Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : [];
  const missing = required.filter((r) => !(r in args));
  if (missing.length > 0) {
    return text(say(`${tool.name} also requires ${missing.map((m) => `"${m}"`).join(', ')}, so no tool was called. Give all its arguments: call ${tool.name} with {…}.`));
  }
  return { kind: 'tool', tool, input: JSON.stringify(args) };
}

/** Codex's code-mode tool: a custom tool running JavaScript with the nested `tools.exec_command`. */
function offersExecCommand(description: string): boolean {
  return description.includes('tools.exec_command');
}

/** JavaScript for Codex's `exec` tool: run the command, hand its output back. */
export function execCommandSource(command: string): string {
  return `const result = await tools.exec_command({ cmd: ${JSON.stringify(command)} });\ntext(result.output);\n`;
}

function typeOf(schema: unknown): unknown {
  if (!isObject(schema)) return undefined;
  const type = schema.type;
  if (Array.isArray(type)) return (type as unknown[]).find((t) => t !== 'null');
  return type;
}

export function findTool(tools: readonly DeclaredTool[], name: string): DeclaredTool | null {
  const qualified = (t: DeclaredTool): string => (t.namespace === null ? t.name : `${t.namespace}.${t.name}`);
  const exact = tools.find((t) => qualified(t) === name) ?? tools.find((t) => t.name === name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  const loose = tools.filter((t) => qualified(t).toLowerCase() === lower || t.name.toLowerCase() === lower);
  return loose.length === 1 ? loose[0]! : null;
}

// ---------------------------------------------------------------------------------------------
// Texts

function text(value: string): DevPlan {
  return { kind: 'text', text: value };
}

function say(sentence: string): string {
  return `[aigov dev model] ${sentence} ${DEV_MODEL_NOTICE}`;
}

/** At most 200 characters of a text, whitespace collapsed, with … when cut. */
export function quote(value: string): string {
  const clean = value.replace(/\s+/g, ' ').trim();
  const chars = Array.from(clean);
  return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join('')}…` : clean;
}

export function echoAnswer(userText: string, toolsDeclared: boolean): string {
  const hint = toolsDeclared ? ' It calls a tool only when asked in so many words: run `COMMAND` with TOOL, or call TOOL with {JSON arguments}.' : '';
  return say(`You said: "${quote(userText)}".${hint}`);
}

export function roundOverAnswer(resultText: string): string {
  return say(`The tool returned: "${quote(resultText)}". That ends this round of tool calls: the dev model calls another tool only when a new message asks for one.`);
}

function notDeclaredAnswer(name: string, tools: readonly DeclaredTool[]): string {
  if (tools.length === 0) return say(`No tool named "${name}" is available: this request declares no tools, so none was called.`);
  const names = tools.slice(0, LISTED_TOOLS).map((t) => (t.namespace === null ? t.name : `${t.namespace}.${t.name}`));
  const more = tools.length > LISTED_TOOLS ? ` and ${tools.length - LISTED_TOOLS} more` : '';
  return say(`No tool named "${name}" is available in this request, so none was called. Declared tools: ${names.join(', ')}${more}.`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
