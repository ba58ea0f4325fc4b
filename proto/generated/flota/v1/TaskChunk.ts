// Original file: proto/flota/v1/master.proto


export interface TaskChunk {
  'taskId'?: (string);
  'attempt'?: (number);
  'lease'?: (string);
  'seq'?: (number);
  'text'?: (string);
}

export interface TaskChunk__Output {
  'taskId': (string);
  'attempt': (number);
  'lease': (string);
  'seq': (number);
  'text': (string);
}
