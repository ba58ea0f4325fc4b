/** The master configuration, read exactly as `flota up` and `flota master` read it. */
import { ConfigError } from '../../common/errors.ts';
import { loadMasterConfig, type MasterConfig } from '../../master/src/config.ts';
import { type CheckResult, fail, pass } from './result.ts';

export function checkConfig(env: NodeJS.ProcessEnv): {
  result: CheckResult;
  config?: MasterConfig;
} {
  try {
    const config = loadMasterConfig(env);
    return { result: pass('config', 'configuration valid'), config };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The message is a heading and one `  - NAME: problem` line per problem.
    const problems = err.message.split('\n').filter((line) => line.trim().startsWith('-'));
    const lines = problems.length > 0 ? problems : [err.message];
    const count = lines.length === 1 ? '1 problem' : `${lines.length} problems`;
    return {
      result: fail(
        'config',
        'configuration invalid',
        `${count}\n${lines.join('\n')}`,
        'Correct the variables named below (README, Configuration, lists each one)',
      ),
    };
  }
}
