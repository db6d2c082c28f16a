/** The technician CLI's view of the controller's HTTP API: JSON in, JSON out, errors as ApiError. */

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  async call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiError(res.status, 'MV_ERR_MESSAGE_INVALID', `controller sent non-JSON (HTTP ${res.status})`);
    }
    return json as T;
  }

  /** GET of a file (CSV, PDF, HTML): the body's bytes. */
  async download(path: string): Promise<Buffer> {
    return Buffer.from(await (await this.send('GET', path)).arrayBuffer());
  }

  /** Sends the request; throws ApiError for transport failures and non-2xx answers. */
  private async send(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.url), {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new ApiError(0, 'MV_ERR_TRANSPORT_FAILED', `cannot reach the controller at ${this.url}: ${(err as Error).message}`);
    }
    if (!res.ok) {
      let e: { code?: unknown; message?: unknown } | undefined;
      try {
        e = (JSON.parse(await res.text()) as { error?: typeof e }).error;
      } catch {
        e = undefined;
      }
      throw new ApiError(res.status, typeof e?.code === 'string' ? e.code : 'MV_ERR_HTTP', typeof e?.message === 'string' ? e.message : `HTTP ${res.status}`);
    }
    return res;
  }
}
