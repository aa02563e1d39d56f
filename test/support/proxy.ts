import { type IncomingMessage, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import { type Socket, connect } from 'node:net';

/**
 * A minimal forward proxy for tests, on 127.0.0.1: HTTP CONNECT tunnels (what clients use for https targets) and
 * absolute-URI requests (plain http targets), optionally behind Basic Proxy-Authorization. It only ever connects to
 * 127.0.0.1 (anything else is refused with 403), counts what it did, and never logs.
 */
export interface TestProxy {
  /** http://127.0.0.1:<port> (no credentials). */
  readonly url: string;
  readonly port: number;
  /** CONNECT tunnels opened. */
  readonly tunnels: number;
  /** Plain-http requests forwarded. */
  readonly forwarded: number;
  /** Requests refused with 407 (missing or wrong Proxy-Authorization). */
  readonly refused: number;
  /** The targets asked for (host:port for CONNECT, the absolute URL for forwarded requests), in order. */
  readonly targets: readonly string[];
  stop(): Promise<void>;
}

export async function startTestProxy(opts: { auth?: { username: string; password: string } } = {}): Promise<TestProxy> {
  const expected = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : undefined;
  const sockets = new Set<Socket>();
  const state = { tunnels: 0, forwarded: 0, refused: 0, targets: [] as string[] };
  const authorized = (req: IncomingMessage): boolean => expected === undefined || req.headers['proxy-authorization'] === expected;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.targets.push(req.url ?? '');
    if (!authorized(req)) {
      state.refused++;
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (target.hostname !== '127.0.0.1' || target.protocol !== 'http:') {
      res.writeHead(403).end();
      return;
    }
    state.forwarded++;
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = httpRequest({ host: '127.0.0.1', port: Number(target.port) || 80, method: req.method, path: `${target.pathname}${target.search}`, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    state.targets.push(req.url ?? '');
    if (!authorized(req)) {
      state.refused++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const m = /^127\.0\.0\.1:(\d+)$/.exec(req.url ?? '');
    if (!m) {
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const upstream = connect(Number(m[1]), '127.0.0.1', () => {
      state.tunnels++;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get tunnels() {
      return state.tunnels;
    },
    get forwarded() {
      return state.forwarded;
    },
    get refused() {
      return state.refused;
    },
    get targets() {
      return state.targets;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
