import { startMosquitto } from '../../helpers/mosquitto-server.ts';
import { describeDispatchContract } from './dispatch.contract.ts';

describeDispatchContract('Mosquitto', async () => {
  const mosquitto = await startMosquitto();
  return { mqttUrl: mosquitto.url, stop: () => mosquitto.stop() };
});
