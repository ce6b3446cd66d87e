/**
 * HTML pages of the dev identity provider (`aigov server --dev` only): user-code entry, device
 * confirmation, the "sign in as a seeded user" picker, success and error pages. Self-contained
 * (no external fonts or scripts) and loud about being a development IdP.
 */
import type { DevUser } from './dev-users.ts';

export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
.banner{background:#b42318;color:#fff;padding:10px 16px;font-weight:600;text-align:center}
.card{max-width:420px;margin:32px auto;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);padding:24px 28px}
h1{font-size:1.4em;margin:0 0 12px}
p{line-height:1.45}
.err{color:#b42318;font-weight:600}
code.usercode{display:block;font-size:2em;text-align:center;letter-spacing:.08em;margin:12px 0}
input[type=text]{width:100%;box-sizing:border-box;height:44px;font-size:18px;text-align:center;text-transform:uppercase;margin:8px 0 12px}
input[type=password]{width:100%;box-sizing:border-box;height:36px;font-size:15px;margin:6px 0 12px}
button{width:100%;height:40px;font-size:15px;font-weight:600;border:0;border-radius:6px;background:#2f5fd0;color:#fff;cursor:pointer;margin:4px 0}
button.secondary{background:#e4e7ec;color:#1d2330}
.user{display:block;text-align:left;padding:8px 12px;height:auto}
.user small{display:block;font-weight:400;opacity:.85}
.muted{color:#667085;font-size:.9em}
`;

/** A full HTML document with the DEV banner. */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · aigov DEV identity provider</title>
<style>${STYLE}</style>
</head>
<body>
<div class="banner">aigov DEV identity provider — for local development only (aigov server --dev). Not for real users.</div>
<div class="card">
${body}
</div>
</body>
</html>`;
}

export function userCodeInputPage(form: string, error: { name?: string; userCode?: string } | undefined): string {
  let message = '<p>Enter the code shown by <code>aigov login</code>.</p>';
  if (error?.name === 'ExpiredError') message = '<p class="err">That code has expired. Run <code>aigov login</code> again.</p>';
  else if (error?.name === 'AlreadyUsedError') message = '<p class="err">That code has already been used.</p>';
  else if (error?.name === 'AbortedError') message = '<p class="err">The sign-in was cancelled. You can close this page.</p>';
  else if (error && (error.userCode !== undefined || error.name === 'NoCodeError' || error.name === 'NotFoundError')) {
    message = '<p class="err">The code you entered is incorrect. Try again.</p>';
  } else if (error) message = '<p class="err">There was an error processing your request.</p>';
  return page(
    'Device sign-in',
    `<h1>Device sign-in</h1>
${message}
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`,
  );
}

export function userCodeConfirmPage(form: string, clientName: string, userCode: string): string {
  return page(
    'Confirm device',
    `<h1>Confirm device</h1>
<p><strong>${escapeHtml(clientName)}</strong> asks to sign in. Check that your terminal shows this code:</p>
<code class="usercode">${escapeHtml(userCode)}</code>
${form}
<button type="submit" form="op.deviceConfirmForm" autofocus>Continue</button>
<button type="submit" class="secondary" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button>`,
  );
}

export function successPage(clientName: string | undefined): string {
  const who = clientName ? ` to ${escapeHtml(clientName)}` : '';
  return page('Signed in', `<h1>Signed in</h1><p>Your sign-in${who} succeeded. You can close this page and return to your terminal.</p>`);
}

export function errorPage(out: Record<string, unknown>): string {
  const error = escapeHtml(out['error'] ?? 'server_error');
  const description = out['error_description'] === undefined ? '' : `<p>${escapeHtml(out['error_description'])}</p>`;
  return page('Error', `<h1>Something went wrong</h1><p class="err">${error}</p>${description}`);
}

/**
 * The seeded-user picker shown when the device login needs a user (login + consent in one).
 * Signing in as a user takes the approve secret from the gateway's banner; Deny does not.
 */
export function userPickerPage(action: string, users: readonly DevUser[], clientName: string, scopes: readonly string[], error?: string): string {
  const buttons = users
    .map(
      (u) => `<button class="user" type="submit" name="user" value="${escapeHtml(u.id)}">Sign in as ${escapeHtml(u.name)}
<small>${escapeHtml(u.email)} · groups: ${escapeHtml(u.groups.join(', ') || 'none')}</small></button>`,
    )
    .join('\n');
  const scopeText = scopes.length ? escapeHtml(scopes.join(' ')) : '(none)';
  return page(
    'Choose a dev user',
    `<h1>Choose a dev user</h1>
<p><strong>${escapeHtml(clientName)}</strong> will act as the user you pick. There are no passwords: these are seeded test users.</p>
<p class="muted">Requested scopes: ${scopeText}</p>
${error === undefined ? '' : `<p class="err">${escapeHtml(error)}</p>`}
<form method="post" action="${escapeHtml(action)}">
<label for="secret">Approve secret (printed by <code>aigov server --dev</code> when it started)</label>
<input id="secret" type="password" name="secret" autocomplete="off" required>
${buttons}
<button class="secondary" type="submit" name="deny" value="yes" formnovalidate>Deny</button>
</form>`,
  );
}
