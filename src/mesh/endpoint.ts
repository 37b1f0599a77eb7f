/** One place a connection can go: a task's address and the target port. */
export interface Endpoint {
  readonly task: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly node: string;
  readonly local: boolean;
  /** Reach the task through the authenticated tunnel to its node's data plane, not directly. */
  readonly via?: {
    readonly host: string;
    readonly port: number;
    readonly nodeName: string;
  };
}

/** Live, mutable per-task facts the pickers read but never own: active connections and ejections. */
export interface Load {
  active(task: string): number;
  ejected(task: string, now: number): boolean;
}
