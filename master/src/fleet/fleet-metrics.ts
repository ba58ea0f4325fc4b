/** Fleet control on /metrics: whether dispatch is stopped, how many workers are held from work. */
import { Gauge, type Registry } from 'prom-client';
import type { FleetControl } from './fleet-control.ts';

export function registerFleetMetrics(registry: Registry, fleet: FleetControl): void {
  new Gauge({
    name: 'flota_dispatch_stopped',
    help: '1 while an emergency stop holds all dispatch (POST /api/fleet/stop), else 0',
    registers: [registry],
    collect() {
      this.set(fleet.stopped() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'flota_workers_held',
    help: 'Workers an operator drained, cordoned or is stopping: the master gives them no new work',
    registers: [registry],
    collect() {
      this.set(fleet.heldWorkers());
    },
  });
}
