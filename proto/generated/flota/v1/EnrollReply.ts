// Original file: proto/flota/v1/master.proto


export interface EnrollReply {
  'credential'?: (string);
}

export interface EnrollReply__Output {
  'credential': (string);
}
