// Original file: proto/flota/v1/master.proto

import type { WorkerReport as _flota_v1_WorkerReport, WorkerReport__Output as _flota_v1_WorkerReport__Output } from '../../flota/v1/WorkerReport.ts';

export interface WorkerReports {
  'reports'?: (_flota_v1_WorkerReport)[];
}

export interface WorkerReports__Output {
  'reports': (_flota_v1_WorkerReport__Output)[];
}
