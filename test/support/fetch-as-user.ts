/** Calls to a running gateway's HTTP API as a logged-in user (a bearer access token). */

export interface UserRequest {
  readonly method?: string;
  /** Sent as JSON (with `content-type: application/json`); omitted: no body, no content-type. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** `fetch(gatewayUrl + path)` with `authorization: Bearer TOKEN`. */
export function fetchAsUser(gatewayUrl: string, token: string, path: string, request: UserRequest = {}): Promise<Response> {
  const { method, body, headers } = request;
  return fetch(`${gatewayUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
