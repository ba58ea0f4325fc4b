// Original file: proto/flota/v1/master.proto


export interface TaskAck {
  'accepted'?: (boolean);
  'reason'?: (string);
}

export interface TaskAck__Output {
  'accepted': (boolean);
  'reason': (string);
}
