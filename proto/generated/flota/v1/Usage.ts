// Original file: proto/flota/v1/master.proto


export interface Usage {
  'inputTokens'?: (number);
  'outputTokens'?: (number);
}

export interface Usage__Output {
  'inputTokens': (number);
  'outputTokens': (number);
}
