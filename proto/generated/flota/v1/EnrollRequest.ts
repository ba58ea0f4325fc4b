// Original file: proto/flota/v1/master.proto


export interface EnrollRequest {
  'workerId'?: (string);
}

export interface EnrollRequest__Output {
  'workerId': (string);
}
