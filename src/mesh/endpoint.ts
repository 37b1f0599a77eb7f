/** One place a connection can go: a task's address and the target port. */
export interface Endpoint {
  readonly task: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly node: string;
  readonly local: boolean;
  /** Reach the task through its node's data-plane port instead of directly. */
  readonly via?: {
    readonly host: string;
    readonly port: number;
    readonly tls: boolean;
    readonly nodeName: string;
  };
}

/** Live, mutable per-task facts the pickers read but never own: active connections and ejections. */
export interface Load {
  active(task: string): number;
  ejected(task: string, now: number): boolean;
}
