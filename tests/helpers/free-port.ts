/** Test-side name for the shared helper; the server helpers retry on a new port if it was taken. */
export { freeLoopbackPort as freePort } from '../../common/free-port.ts';
