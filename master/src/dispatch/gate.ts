/**
 * What dispatch asks before it gives a task to a worker: the operator's word
 * (fleet control owns it). Checked on every take, so a stop or a drain holds
 * from the next take on, without waiting for any worker's heartbeat.
 */
export interface DispatchGate {
  /** True while all dispatch is stopped (emergency stop): queued tasks stay queued. */
  stopped(): boolean;
  /** False for a worker an operator drained, cordoned or is stopping. */
  admits(workerId: string): boolean;
  /** `open`: dispatch may take again (a resume): every lane looks at its queue. */
  on(event: 'open', listener: () => void): unknown;
  off(event: 'open', listener: () => void): unknown;
}
