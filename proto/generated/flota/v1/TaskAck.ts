// Original file: proto/flota/v1/master.proto


export interface TaskAck {
  'accepted'?: (boolean);
  'reason'?: (string);
  'taskId'?: (string);
  'attempt'?: (number);
  'final'?: (boolean);
}

export interface TaskAck__Output {
  'accepted': (boolean);
  'reason': (string);
  'taskId': (string);
  'attempt': (number);
  'final': (boolean);
}
