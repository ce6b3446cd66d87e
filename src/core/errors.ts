/**
 * The one registry of aigov's coded errors.
 *
 * Every failure a user can meet has a code here, with the HTTP status the gateway answers with,
 * the exit code the CLI returns, the provider error `type` SDKs map to an exception class, a
 * message template and a hint. Messages never carry tokens, keys, prompts or PII: only the
 * template parameters named here, which callers fill with safe values (paths, names, limits).
 * docs/errors.md documents each code; a test keeps the two in step.
 */

export type ProviderErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error'
  | 'timeout_error';

export interface ErrorSpec {
  readonly status: number;
  readonly exitCode: number;
  readonly type: ProviderErrorType;
  readonly message: string;
  readonly hint: string;
}

/** Exit codes follow sysexits(3) where one fits. */
const EXIT = { usage: 64, dataErr: 65, noInput: 66, unavailable: 69, software: 70, tempFail: 75, noPerm: 77, config: 78, auth: 4 } as const;

export const ERRORS = {
  AIGOV_E_AUTH_MISSING: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'No aigov access token was sent with this request.',
    hint: 'Run your program through `aigov run -- …`, or send `Authorization: Bearer <token>` from `aigov login`.',
  },
  AIGOV_E_AUTH_INVALID: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'The access token was rejected: {reason}.',
    hint: 'Run `aigov login` to get a new token.',
  },
  AIGOV_E_AUTH_EXPIRED: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'The access token has expired.',
    hint: 'The aigov daemon refreshes tokens on its own; if this persists, run `aigov login`.',
  },
  AIGOV_E_AUTH_SCOPE: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'The access token lacks the scope `{scope}` that this gateway requires.',
    hint: 'Run `aigov login` again; if it persists, ask your IdP administrator to grant the scope.',
  },
  AIGOV_E_IDP_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The gateway cannot reach the identity provider to verify tokens.',
    hint: 'Retry shortly; operators should check the identity.issuer setting and the IdP.',
  },
  AIGOV_E_BAD_JSON: {
    status: 400, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'The request body is not valid JSON: {reason}.',
    hint: 'Send a JSON object as the request body with `Content-Type: application/json`.',
  },
  AIGOV_E_BAD_REQUEST: {
    status: 400, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'The request is malformed: {reason}.',
    hint: "Check the request against the provider's API reference.",
  },
  AIGOV_E_BODY_TOO_LARGE: {
    status: 413, exitCode: EXIT.dataErr, type: 'request_too_large',
    message: 'The request body exceeds the gateway limit of {limit} bytes.',
    hint: 'Send a smaller request, or ask the operator to raise limits.max_body_bytes.',
  },
  AIGOV_E_UNKNOWN_ENDPOINT: {
    status: 404, exitCode: EXIT.usage, type: 'not_found_error',
    message: 'The gateway does not serve {method} {path}.',
    hint: 'aigov forwards only the provider endpoints it governs; see GET /.well-known/aigov-configuration.',
  },
  AIGOV_E_JSON_TOO_DEEP: {
    status: 400, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'The JSON body nests deeper than {limit} levels.',
    hint: 'Flatten the request (tool inputs, schemas); no provider needs this depth.',
  },
  AIGOV_E_BAD_PATH: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'The request path is not one the gateway forwards: it holds {reason}.',
    hint: 'Send the path as the provider documents it; model ids are plain names without slashes or dot segments.',
  },
  AIGOV_E_METHOD_NOT_ALLOWED: {
    status: 405, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'Method {method} is not allowed on {path}.',
    hint: "Use the method given in the provider's API reference.",
  },
  AIGOV_E_WEBSOCKET_UNSUPPORTED: {
    status: 426, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'aigov governs {path} over HTTP, not over a WebSocket.',
    hint: 'Send the request as a plain HTTPS POST (Codex falls back to it by itself on this answer).',
  },
  AIGOV_E_BAD_CONTENT_ENCODING: {
    status: 415, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'The request body is sent in the content-encoding "{coding}", which the gateway cannot read{reason}.',
    hint: 'Send the body uncompressed, or compressed with gzip, deflate, br or zstd.',
  },
  AIGOV_E_MODEL_NOT_ALLOWED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'Model `{model}` is not enabled for provider `{provider}` on this gateway.',
    hint: 'Use one of the models listed by GET /models, or ask the operator to add it to providers[].models.',
  },
  AIGOV_E_POLICY_BLOCKED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'Blocked by aigov policy rule `{rule}`: {reason}.',
    hint: 'Change the request, or ask your security team about the rule.',
  },
  AIGOV_E_APPROVAL_REQUIRED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'This request needs approval under aigov policy rule `{rule}`: {reason}.',
    hint: 'The rule names no approver group, so nobody can approve it: change the request, or ask your security team about the rule.',
  },
  AIGOV_E_APPROVAL_DENIED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'Approval {id} under aigov policy rule `{rule}` was denied by {by}: {reason}.',
    hint: 'The request was not sent. Change it, or talk to the approver.',
  },
  AIGOV_E_APPROVAL_EXPIRED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'Approval {id} under aigov policy rule `{rule}` expired before anyone decided.',
    hint: 'The request was not sent. Send it again to open a new approval, and ask an approver ({approvers}) to watch `aigov approvals`.',
  },
  AIGOV_E_APPROVAL_INTERRUPTED: {
    status: 503, exitCode: EXIT.tempFail, type: 'api_error',
    message: 'Approval {id} is still open, but the gateway stopped holding this request ({reason}).',
    hint: 'Send the same request again: once approved, it goes through without a second approval.',
  },
  AIGOV_E_APPROVALS_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The gateway could not read or record approvals: its store did not answer.',
    hint: 'Nothing was decided. Retry shortly; operators should check the storage settings and the gateway log.',
  },
  AIGOV_E_APPROVAL_NOT_FOUND: {
    status: 404, exitCode: EXIT.noInput, type: 'not_found_error',
    message: 'No approval {id} that you may see.',
    hint: 'List the ones you can decide with `aigov approvals list`.',
  },
  AIGOV_E_APPROVAL_SELF: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'You cannot decide approval {id}: it is your own request.',
    hint: 'Another approver ({approvers}) has to decide it.',
  },
  AIGOV_E_APPROVAL_FORBIDDEN: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'You cannot decide approval {id}: only members of {approvers} can.',
    hint: 'Ask a member of one of those groups.',
  },
  AIGOV_E_APPROVAL_CLOSED: {
    status: 409, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'Approval {id} is already {state}.',
    hint: 'Nothing to do; `aigov approvals show {id}` tells who decided and why.',
  },
  AIGOV_E_APPROVAL_VOTED: {
    status: 409, exitCode: EXIT.dataErr, type: 'invalid_request_error',
    message: 'You already approved {id}; it needs {remaining} more approval(s) from other people.',
    hint: 'Wait for another approver ({approvers}).',
  },
  AIGOV_E_POLICY_FAILED: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The request was not sent: the gateway could not evaluate its policy.',
    hint: 'aigov refuses what it cannot check. Retry; operators should look at the gateway log for the policy error.',
  },
  AIGOV_E_POLICY_BUDGET: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'The request was not sent: checking it against aigov policy rule `{rule}` went past the time the gateway allows one request.',
    hint: 'aigov refuses what it cannot check in time. Send a shorter text; if the text is ordinary, ask your security team to simplify the rule\'s patterns.',
  },
  AIGOV_E_BAD_SESSION: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'The x-aigov-session header is not a valid session id: {reason}.',
    hint: 'Let `aigov run` set it, or send 1-128 characters of letters, digits, ".", "_", ":" or "-".',
  },
  AIGOV_E_SESSION_CONFLICT: {
    status: 409, exitCode: EXIT.noPerm, type: 'invalid_request_error',
    message: 'The session id in x-aigov-session belongs to another user.',
    hint: 'Let `aigov run` pick the session id, or send a new unique one.',
  },
  AIGOV_E_SESSION_CALL_LIMIT: {
    status: 429, exitCode: EXIT.tempFail, type: 'rate_limit_error',
    message: 'This session has made {limit} calls, the most the gateway allows one session (limits.max_calls_per_session); this one was not sent.',
    hint: 'A runaway agent loop? Start a new session (a new `aigov run`); operators can raise limits.max_calls_per_session (0 = no limit).',
  },
  AIGOV_E_BUDGET_EXCEEDED: {
    status: 429, exitCode: EXIT.tempFail, type: 'rate_limit_error',
    message: 'The request was not sent: {reason}. The budget resets at {reset}.',
    hint: 'Wait until then (the answer\'s retry-after says how long), or ask your security team about budget `{budget}`.',
  },
  AIGOV_E_BUDGET_UNPRICED: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'The request was not sent: model `{model}` of provider `{provider}` has no price, and budget `{budget}` counts US dollars.',
    hint: 'Use a model with a price, or ask the operators to add its price (pricing.models in the gateway config) or to let the budget allow unpriced models (unpriced: allow).',
  },
  AIGOV_E_BUDGET_STORE_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The request was not sent: the budget counters ({store}) cannot be reached.',
    hint: 'Budgets fail closed: a request is sent only once it is counted. Retry shortly; operators should check budgets.counters in the gateway config and the gateway log.',
  },
  AIGOV_E_STORE_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The request was not sent: the gateway could not record it.',
    hint: 'aigov never forwards a request it cannot record. Retry shortly; operators should check the storage settings and /readyz.',
  },
  AIGOV_E_STORE_RESULT_FAILED: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The answer was withheld: the gateway could not record its result, and an answer is only delivered complete once it is recorded.',
    hint: 'Retry shortly; the call stays pending in the recordings and is marked aborted when the gateway next starts. Operators should check the storage (disk space) and /readyz.',
  },
  AIGOV_E_GATEWAY_STOPPED: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The gateway stopped before this call ended; the answer may have been cut off at the client.',
    hint: 'Recorded on calls a crashed or killed gateway left open, when the store is next opened; their ended_at is the time of their last recorded stream event. Retry the request.',
  },
  AIGOV_E_STORE_READ_FAILED: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The gateway could not read or log access to the recordings: the recording store did not answer.',
    hint: 'Nothing is shown that could not be read and, for auditors, logged. Retry shortly; operators should check the storage settings and /readyz.',
  },
  // ---- sessions API ----
  AIGOV_E_SESSION_NOT_FOUND: {
    status: 404, exitCode: EXIT.noInput, type: 'not_found_error',
    message: 'No session {id} that you may see.',
    hint: 'List your sessions with `aigov sessions list`; members of the auditor groups see everyone\'s.',
  },
  AIGOV_E_SESSIONS_FORBIDDEN: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: "Only members of the auditor groups ({groups}) may read other users' sessions.",
    hint: 'Leave out --user to see your own sessions, or ask to be added to an auditor group.',
  },
  AIGOV_E_USAGE_FORBIDDEN: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: "Only members of the auditor groups ({groups}) may see other users' usage.",
    hint: 'Leave out --user to see your own usage, or ask to be added to an auditor group.',
  },
  AIGOV_E_RAW_COPY_FORBIDDEN: {
    status: 403, exitCode: EXIT.noPerm, type: 'permission_error',
    message: 'Only members of the auditor groups ({groups}) may read the raw (unmasked) request copies.',
    hint: 'Leave out --raw to see the session as recorded (masked), or ask to be added to an auditor group.',
  },
  AIGOV_E_RAW_COPY_DISABLED: {
    status: 409, exitCode: EXIT.noInput, type: 'invalid_request_error',
    message: 'This gateway keeps no raw request copies: audit.raw_copy is not configured, so only the masked requests were recorded.',
    hint: 'Leave out --raw. Operators can enable raw copies with audit.raw_copy.key (README "Audit trail"); calls recorded before that have none.',
  },
  AIGOV_E_RAW_COPY_UNREADABLE: {
    status: 500, exitCode: EXIT.dataErr, type: 'api_error',
    message: 'A raw request copy cannot be opened: {reason}.',
    hint: 'Nothing of it is shown. Another key id: run the gateway with the audit.raw_copy.key that sealed it. Failed authentication: the row was altered; run `aigov audit verify` and inspect the database.',
  },
  AIGOV_E_RAW_COPY_SEAL_FAILED: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The request was not sent: the gateway could not seal the raw copy of it that its configuration requires.',
    hint: 'Retry shortly; operators should look at the gateway log.',
  },
  AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The request was not sent: the gateway could not store the pseudonyms that stand in for its personal data.',
    hint: 'aigov never sends a placeholder it could not restore after a restart. Retry shortly; operators should look at the gateway log and the storage settings.',
  },
  AIGOV_E_UPSTREAM_BUSY: {
    status: 503, exitCode: EXIT.tempFail, type: 'overloaded_error',
    message: 'The gateway has {limit} calls open to provider `{provider}`, its limit; this one was not sent.',
    hint: 'Retry shortly (the SDKs do so on their own); operators can raise limits.upstream_max_connections.',
  },
  AIGOV_E_UPSTREAM_LIMIT: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The answer from provider `{provider}` went past the gateway\'s limit on {limit}.',
    hint: 'Ask for a shorter answer (max_tokens) or a smaller one; operators set these in the gateway\'s limits section.',
  },
  AIGOV_E_UPSTREAM_BAD_RESPONSE: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'Provider `{provider}` answered with something the gateway cannot govern: {reason}.',
    hint: 'What the gateway could not read was not passed on (in a stream, the answer ends here). Operators: check the provider\'s base_url (a proxy or error page in between?).',
  },
  AIGOV_E_THINKING_UNRESTORABLE: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'The request was not sent: it carries a thinking block whose text the gateway masked, and the gateway can no longer restore the original the provider signed.',
    hint: 'Anthropic accepts a thinking block only as it wrote it. The seal aigov put in its signature is from another gateway key or user (a restart without pseudonyms.key?). Continue in a new conversation, or drop the earlier thinking blocks from it.',
  },
  AIGOV_E_UPSTREAM_UNREACHABLE: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The upstream provider `{provider}` could not be reached.',
    hint: 'Retry shortly; operators should check providers[].base_url and the network path to it.',
  },
  AIGOV_E_UPSTREAM_TIMEOUT: {
    status: 504, exitCode: EXIT.tempFail, type: 'timeout_error',
    message: 'The upstream provider `{provider}` did not answer in time.',
    hint: 'Retry; operators can raise limits.upstream_headers_timeout_ms.',
  },
  AIGOV_E_UPSTREAM_STREAM_BROKEN: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The upstream provider `{provider}` ended the stream before it was complete.',
    hint: 'Retry the request.',
  },
  AIGOV_E_SHUTTING_DOWN: {
    status: 503, exitCode: EXIT.unavailable, type: 'overloaded_error',
    message: 'The gateway is shutting down and takes no new requests.',
    hint: 'Retry; another replica or the restarted gateway will serve it.',
  },
  AIGOV_E_STARTING: {
    status: 503, exitCode: EXIT.unavailable, type: 'overloaded_error',
    message: 'The gateway is starting and takes no requests yet.',
    hint: 'Retry after the Retry-After seconds; /readyz answers 200 once it is ready.',
  },
  AIGOV_E_INTERNAL: {
    status: 500, exitCode: EXIT.software, type: 'api_error',
    message: 'The gateway hit an internal error (reference {ref}).',
    hint: 'Retry; operators can find the reference in the gateway log.',
  },
  AIGOV_E_CONFIG_NOT_FOUND: {
    status: 500, exitCode: EXIT.noInput, type: 'api_error',
    message: 'Cannot read the configuration file {file}: {reason}.',
    hint: 'Pass an existing file with --config, or try `aigov server --dev` for a zero-config gateway.',
  },
  AIGOV_E_CONFIG_INVALID: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'Invalid configuration in {file}:\n{problems}',
    hint: 'Fix the listed keys; examples/gateway.yaml documents every setting.',
  },
  AIGOV_E_SECRET_UNRESOLVED: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'Cannot resolve the secret at {path} in {file}: {reason}.',
    hint: 'Set the environment variable or create the file it refers to (its value is never printed).',
  },
  AIGOV_E_LISTEN_FAILED: {
    status: 500, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'Cannot listen on {address}: {reason}.',
    hint: 'Choose another port with --port (or listen.port), or stop whatever holds this one.',
  },
  AIGOV_E_STORE_OPEN_FAILED: {
    status: 500, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'Cannot open the recording store at {location}: {reason}.',
    hint: 'Check the storage settings: for SQLite, that the directory exists and is writable; for PostgreSQL, that the server answers at storage.url, the database exists and its user may create tables.',
  },
  AIGOV_E_PATH_NOT_PRIVATE: {
    status: 500, exitCode: EXIT.noPerm, type: 'api_error',
    message: 'Refusing to keep aigov data at {path}: {reason}.',
    hint: 'aigov keeps its state private to the user who runs it (directories 0700, databases, keys and secrets 0600): give the path to that user (chown), or choose another location (--state-dir, storage.path, AIGOV_CONFIG_DIR, AIGOV_RUNTIME_DIR).',
  },
  AIGOV_E_PSEUDONYM_KEY_MISMATCH: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'The pseudonym vault in {location} was sealed with another key (key id {stored}); the configured pseudonyms.key has key id {configured}.',
    hint: 'Set pseudonyms.key to the key the vault was written with (nothing in the vault was changed). Without that key its entries cannot be read; examples/gateway.yaml says how to start a new vault.',
  },
  // ---- CLI: login, credentials, daemon, run ----
  AIGOV_E_GATEWAY_UNREACHABLE: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'Cannot reach the aigov gateway at {url}: {reason}.',
    hint: 'Check the URL (aigov login --gateway URL) and that the gateway is running.',
  },
  AIGOV_E_GATEWAY_INVALID: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: '{url} did not answer like an aigov gateway: {reason}.',
    hint: 'Pass the gateway base URL (the one serving /.well-known/aigov-configuration).',
  },
  AIGOV_E_LOGIN_DENIED: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'The sign-in was denied at the identity provider.',
    hint: 'Run `aigov login` again and approve the request, or ask your IdP administrator.',
  },
  AIGOV_E_LOGIN_EXPIRED: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'The sign-in code expired before it was approved.',
    hint: 'Run `aigov login` again and approve the new code sooner.',
  },
  AIGOV_E_LOGIN_FAILED: {
    status: 502, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The sign-in failed: {reason}.',
    hint: 'Retry `aigov login`; if it persists, check the identity provider.',
  },
  AIGOV_E_IDP_UNREACHABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'Cannot get an aigov access token: the identity provider at {url} is not available ({reason}).',
    hint: 'Your sign-in is still valid: retry once it answers. With `aigov server --dev` the identity provider is the gateway itself — is it running? (`aigov status` asks it.)',
  },
  AIGOV_E_NOT_LOGGED_IN: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'Not logged in to aigov (profile `{profile}`).',
    hint: 'Run `aigov login --gateway URL` first.',
  },
  AIGOV_E_SESSION_EXPIRED: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'Your aigov sign-in has expired or was revoked (profile `{profile}`).',
    hint: 'Run `aigov login` to sign in again.',
  },
  AIGOV_E_KEYCHAIN_UNAVAILABLE: {
    status: 500, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The OS keychain is not available: {reason}.',
    hint: 'Unlock or start your keychain (on Linux, a Secret Service such as GNOME Keyring), or pass --insecure-storage to keep the token in a 0600 file.',
  },
  AIGOV_E_CREDENTIALS_UNREADABLE: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'The stored aigov credentials cannot be read: {reason}.',
    hint: 'Run `aigov logout` and `aigov login` again.',
  },
  AIGOV_E_RUN_KEY_INVALID: {
    status: 401, exitCode: EXIT.auth, type: 'authentication_error',
    message: 'This request did not carry a valid aigov run key.',
    hint: 'Start the program with `aigov run -- …`, which sets OPENAI_API_KEY / ANTHROPIC_API_KEY for it.',
  },
  AIGOV_E_DAEMON_UNAVAILABLE: {
    status: 503, exitCode: EXIT.unavailable, type: 'api_error',
    message: 'The aigov daemon is not available: {reason}.',
    hint: 'Run `aigov daemon start` (or just `aigov run`, which starts it), and `aigov daemon status` to see its state.',
  },
  AIGOV_E_RUN_NESTED: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'Already inside `aigov run` (session {session}); nested runs are not supported.',
    hint: 'Run the inner command directly: it already talks to the gateway through the outer run.',
  },
  AIGOV_E_COMMAND_NOT_FOUND: {
    status: 400, exitCode: 127, type: 'invalid_request_error',
    message: 'Cannot run `{command}`: {reason}.',
    hint: 'Check the command name and your PATH.',
  },
  AIGOV_E_DAEMON_RUNNING: {
    status: 409, exitCode: EXIT.unavailable, type: 'invalid_request_error',
    message: 'An aigov daemon is already running for profile `{profile}` (pid {pid}).',
    hint: 'Use it (`aigov daemon status`), or stop it first with `aigov daemon stop`.',
  },
  AIGOV_E_DAEMON_OTHER_CONFIG: {
    status: 409, exitCode: EXIT.config, type: 'invalid_request_error',
    message: 'The aigov daemon on {socket} (pid {pid}) serves another configuration: {found}. This command is for {expected}, so it did not use that daemon and left it running.',
    hint: 'Check that HOME, XDG_CONFIG_HOME, AIGOV_CONFIG_DIR and AIGOV_PROFILE are what you meant; to keep two configurations apart entirely, give each its own AIGOV_RUNTIME_DIR.',
  },
  AIGOV_E_DAEMON_STALE: {
    status: 409, exitCode: EXIT.unavailable, type: 'invalid_request_error',
    message: "The aigov daemon of profile `{profile}` (pid {pid}) serves {found}, but the profile is now {expected}; it was not used.",
    hint: 'Stop it with `aigov daemon stop --profile {profile}`; `aigov run` then starts one for the current login.',
  },
  // ---- CLI usage: what was typed, not what a gateway answered ----
  AIGOV_E_BAD_FLAG: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: '{flag} {value} is not valid: {problem}.',
    hint: 'For example: {example}',
  },
  AIGOV_E_GATEWAY_REQUIRED: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'Which gateway should profile `{profile}` sign in to? {reason}.',
    hint: 'Pass --gateway URL (or set AIGOV_GATEWAY), e.g. `aigov login --profile {profile} --gateway https://aigov.example.com`, or `--gateway 127.0.0.1:8787` for a local `aigov server --dev`.',
  },
  AIGOV_E_UNKNOWN_COMMAND: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'There is no `aigov {command}` command.',
    hint: '{suggestion}`aigov --help` lists the commands.',
  },
  // ---- policy files ----
  AIGOV_E_POLICY_NOT_FOUND: {
    status: 500, exitCode: EXIT.noInput, type: 'api_error',
    message: 'Cannot read the policy file {file}: {reason}.',
    hint: 'Pass an existing policy file (--policy or AIGOV_POLICY); examples/policy.yaml is a starting point.',
  },
  AIGOV_E_POLICY_INVALID: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'Invalid policy in {file}:\n{problems}',
    hint: 'Fix the listed keys (`aigov policy validate FILE` checks a file); examples/policy.yaml documents every setting.',
  },
  AIGOV_E_POLICY_TEST_USAGE: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'aigov policy test: {reason}.',
    hint: 'See `aigov policy test --help`: a TEXT to evaluate, or --tool NAME with --input JSON (or --command) for a tool call.',
  },
  // ---- audit trail (`aigov audit verify`) ----
  AIGOV_E_AUDIT_CHAIN_BROKEN: {
    status: 500, exitCode: EXIT.dataErr, type: 'api_error',
    message: 'The audit trail does not verify: {detail}',
    hint: 'The record named was changed, deleted or reordered outside the gateway (or the file is another copy). Keep the database as evidence; `aigov audit verify --json` gives seq, kind and id.',
  },
  AIGOV_E_AUDIT_SIGNATURE_INVALID: {
    status: 500, exitCode: EXIT.dataErr, type: 'api_error',
    message: 'An audit checkpoint signature is not valid: {detail}',
    hint: 'Check that --public-key (or the configuration\'s audit.signing_key) is the gateway\'s key; if it is, the checkpoints were forged or edited.',
  },
  AIGOV_E_AUDIT_UNSIGNED: {
    status: 500, exitCode: EXIT.tempFail, type: 'api_error',
    message: 'The audit trail is intact, but not all of it is signed: {what}.',
    hint: 'The gateway signs every audit.checkpoint_interval, at shutdown and at each purge (with audit.signing_key set); run again later, or drop --require-signed.',
  },
  AIGOV_E_AUDIT_DB_UNREADABLE: {
    status: 500, exitCode: EXIT.noInput, type: 'api_error',
    message: 'Cannot read the recording database {file}: {reason}.',
    hint: 'Pass the gateway\'s database with --db FILE, or its configuration with --config FILE (storage.path).',
  },
  AIGOV_E_AUDIT_KEY_INVALID: {
    status: 500, exitCode: EXIT.config, type: 'api_error',
    message: 'Cannot use the audit public key {file}: {reason}.',
    hint: 'Give the Ed25519 public key in PEM (`openssl pkey -in signing.key -pubout`), or the private key file itself.',
  },
  AIGOV_E_AUDIT_NO_DATABASE: {
    status: 400, exitCode: EXIT.usage, type: 'invalid_request_error',
    message: 'No recording database to verify.',
    hint: 'Pass --config FILE (the gateway configuration; AIGOV_CONFIG) or --db FILE (the SQLite file; AIGOV_AUDIT_DB).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Placeholder names in a template, e.g. `{reason}` → 'reason'. */
type Params<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Params<Rest> : never;
/** The placeholders of a code's message and hint: both are filled from the same params. */
export type ErrorParams<C extends ErrorCode> = { [K in Params<(typeof ERRORS)[C]['message']> | Params<(typeof ERRORS)[C]['hint']>]: string | number };

export class AigovError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly spec: ErrorSpec;
  readonly params: Readonly<Record<string, string | number>>;

  constructor(code: C, ...args: keyof ErrorParams<C> extends never ? [params?: ErrorParams<C>, options?: ErrorOptions] : [params: ErrorParams<C>, options?: ErrorOptions]) {
    const [params = {} as ErrorParams<C>, options] = args;
    super(formatMessage(ERRORS[code].message, params), options);
    this.name = 'AigovError';
    this.code = code;
    this.spec = ERRORS[code];
    this.params = Object.freeze({ ...(params as Record<string, string | number>) });
  }

  get status(): number { return this.spec.status; }
  get hint(): string { return formatMessage(this.spec.hint, this.params); }
  get exitCode(): number { return this.spec.exitCode; }
}

export function formatMessage(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/**
 * Something a user typed, quoted for a message: control and non-ASCII characters escaped as
 * \u{…} (a look-alike digit or an escape sequence shows as what it is and never reaches the
 * terminal raw), cut at `max` characters. Only for values that are not secret.
 */
export function quotedInput(text: string, max = 60): string {
  const escaped = [...text].map((c) => (/^[\x20-\x7e]$/.test(c) ? c : `\\u{${c.codePointAt(0)!.toString(16)}}`)).join('');
  return `"${escaped.length > max ? `${escaped.slice(0, max)}…` : escaped}"`;
}

export function isAigovError(value: unknown): value is AigovError {
  return value instanceof AigovError;
}
