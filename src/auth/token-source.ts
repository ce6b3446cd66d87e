/** Something that hands out a currently valid access token (the daemon's refresher, or a static CI token). */
export interface AccessToken {
  readonly token: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export interface TokenSource {
  /**
   * A token valid for at least a little while longer; refreshes when needed, one refresh at a
   * time however many callers wait. Rejects with AIGOV_E_SESSION_EXPIRED when the refresh token
   * no longer works (the user must log in again).
   */
  getAccessToken(): Promise<AccessToken>;
  /** Forget the cached access token (e.g. the gateway said 401); the next call refreshes. */
  invalidate(): void;
}
