// Each agent reaches the APIs through a link of its own: a local TCP relay that spreads
// connections over the API processes (the load balancer) and that the harness can cut
// (every connection dropped, reconnects allowed) or partition (nothing gets through).
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class AgentLink {
  private server: Server | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();
  private next = 0;
  partitioned = false;

  constructor(private readonly apis: readonly string[]) {}

  async listen(): Promise<number> {
    const server = createServer((client) => this.relay(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  private relay(client: Socket): void {
    client.on('error', () => undefined);
    if (this.partitioned) {
      client.destroy();
      return;
    }
    const target = this.apis[this.next++ % this.apis.length] ?? '';
    const [host, port] = target.split(':');
    const upstream = createConnection({ host: host ?? '127.0.0.1', port: Number(port) });
    upstream.on('error', () => undefined);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every open connection (both ends see it close). */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  partition(on: boolean): void {
    this.partitioned = on;
    if (on) this.cut();
  }

  close(): void {
    this.cut();
    this.server?.close();
  }
}
