import { describeDispatchContract } from './dispatch.contract.ts';

describeDispatchContract('the embedded aedes broker', async () => ({
  mqttUrl: undefined,
  stop: async () => {},
}));
