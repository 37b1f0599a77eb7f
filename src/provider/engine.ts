import { Agent, request } from 'undici';
import type { ReportedHealth } from '../model/types.js';

/** A container as meshd needs it from the engine, converted at this edge. */
export interface EngineContainer {
  readonly id: string;
  readonly name: string;
  readonly running: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: ReportedHealth;
  /** The engine's last health-check output, if it ran one. */
  readonly healthOutput?: string;
  /** The HEALTHCHECK's start period (0 without one). */
  readonly healthStartPeriodMs?: number;
  readonly networks: readonly {
    readonly name: string;
    readonly address: string;
    readonly aliases: readonly string[];
  }[];
  /** The container's network namespace (`NetworkSettings.SandboxKey`), where meshd can join it. */
  readonly sandbox?: string;
}

/** A container the engine listed but could not inspect just now (not "gone": that is a 404). */
export interface UnknownContainer {
  readonly id: string;
  readonly name: string;
}

/** The engine's running containers, and the ones whose state is unknown for this round. */
export interface EngineListing {
  readonly containers: readonly EngineContainer[];
  readonly unknown: readonly UnknownContainer[];
}

/** An engine answer with an HTTP error status. */
class EngineHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The API version both Docker (>= 20.10) and Podman's compatibility layer speak. */
const apiVersion = 'v1.41';

/**
 * A Docker Engine API client over the unix socket (undici): list, inspect and the event stream.
 * Works against Docker and against Podman's Docker-compatible service.
 */
export class EngineClient {
  private readonly agent: Agent;

  constructor(readonly socketPath: string) {
    this.agent = new Agent({ connect: { socketPath }, keepAliveTimeout: 5000 });
  }

  private async json<T>(path: string): Promise<T> {
    const res = await request(`http://engine/${apiVersion}${path}`, {
      dispatcher: this.agent,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode >= 400)
      throw new EngineHttpError(
        res.statusCode,
        `engine ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`,
      );
    return JSON.parse(text) as T;
  }

  /**
   * Every running container, inspected. A container gone between the list and the inspect (404)
   * is left out; one whose inspect failed otherwise (a timeout, an engine error) is reported as
   * unknown, so that a transient error never removes a healthy task.
   */
  async running(): Promise<EngineListing> {
    const list = await this.json<{ Id: string; Names?: string[] }[]>('/containers/json');
    const containers: EngineContainer[] = [];
    const unknown: UnknownContainer[] = [];
    for (const c of list) {
      try {
        containers.push(await this.inspect(c.Id));
      } catch (err) {
        if (err instanceof EngineHttpError && err.status === 404) continue;
        unknown.push({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, '') });
      }
    }
    return { containers, unknown };
  }

  async inspect(id: string): Promise<EngineContainer> {
    const d = await this.json<RawInspect>(`/containers/${encodeURIComponent(id)}/json`);
    const status = d.State?.Health?.Status ?? '';
    const health: ReportedHealth =
      status === 'starting' || status === 'healthy' || status === 'unhealthy' ? status : 'none';
    const log = d.State?.Health?.Log ?? [];
    const output = log.at(-1)?.Output?.trim();
    return {
      id: d.Id,
      name: (d.Name ?? '').replace(/^\//, ''),
      running: d.State?.Running === true,
      labels: d.Config?.Labels ?? {},
      health,
      ...(output ? { healthOutput: output.slice(0, 200) } : {}),
      healthStartPeriodMs: Math.round((d.Config?.Healthcheck?.StartPeriod ?? 0) / 1e6),
      networks: Object.entries(d.NetworkSettings?.Networks ?? {})
        .filter(([, n]) => n.IPAddress)
        .map(([name, n]) => ({ name, address: n.IPAddress as string, aliases: n.Aliases ?? [] })),
      ...(d.NetworkSettings?.SandboxKey?.startsWith('/') ? { sandbox: d.NetworkSettings.SandboxKey } : {}),
    };
  }

  /**
   * Streams container events until the stream ends or `signal` aborts; resolves when it ends
   * (the caller reconnects), rejects when it cannot connect.
   */
  async events(onEvent: (action: string, id: string) => void, signal: AbortSignal): Promise<void> {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    const res = await request(`http://engine/${apiVersion}/events?filters=${filters}`, {
      dispatcher: this.agent,
      signal,
      headersTimeout: 10_000,
      bodyTimeout: 0,
    });
    if (res.statusCode >= 400) throw new Error(`engine events: HTTP ${res.statusCode}`);
    let buf = '';
    for await (const chunk of res.body) {
      buf += chunk.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (!line) continue;
        try {
          const e = JSON.parse(line) as {
            Action?: string;
            status?: string;
            id?: string;
            Actor?: { ID?: string };
          };
          onEvent(e.Action ?? e.status ?? '', e.Actor?.ID ?? e.id ?? '');
        } catch {
          // A line that is not JSON is not an event.
        }
      }
      if (buf.length > 1 << 20) buf = '';
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

interface RawInspect {
  Id: string;
  Name?: string;
  State?: { Running?: boolean; Health?: { Status?: string; Log?: { Output?: string }[] | null } };
  Config?: { Labels?: Record<string, string> | null; Healthcheck?: { StartPeriod?: number } };
  NetworkSettings?: {
    Networks?: Record<string, { IPAddress?: string; Aliases?: string[] | null }>;
    SandboxKey?: string;
  };
}
