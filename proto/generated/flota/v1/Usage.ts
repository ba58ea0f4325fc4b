// Original file: proto/flota/v1/master.proto


export interface Usage {
  'inputTokens'?: (number);
  'outputTokens'?: (number);
  'estimated'?: (boolean);
}

export interface Usage__Output {
  'inputTokens': (number);
  'outputTokens': (number);
  'estimated': (boolean);
}
