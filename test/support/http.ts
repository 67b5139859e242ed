/** Small HTTP helpers for end-to-end tests against a local stack. */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
  readonly text: string;
}

export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Reply> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { unparsed: text };
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** The reply is the contract's error (API.md §3): this status and code, these extra fields, any others. */
export function expectError(reply: Reply, status: number, code: string, extra: Record<string, unknown> = {}): void {
  expect({ status: reply.status, body: reply.body }).toEqual({
    status,
    body: expect.objectContaining({ error: expect.any(String), code, ...extra }),
  });
}
