import { LocalFiles, SftpFiles, SshConnection, moveStateFile, type Progress } from '@deskpool/kvm-driver';
import type { AgentConfig } from '../config.js';

export interface MoveStateParams {
  path: string;
  targetHost: string;
  targetPath: string;
}

/** Moves a saved-state file from this PC to another one; undefined when the agent has no SSH identity. */
export type StateMover = (params: MoveStateParams, onProgress: (p: Progress) => void) => Promise<Record<string, unknown>>;

/**
 * Saved state goes over SFTP with the agent's own SSH identity, checksummed on both ends. The
 * source is kept: it is deleted only after a restore from the copy is confirmed (invariant 2).
 */
export function sftpStateMover(config: NonNullable<AgentConfig['stateMover']>): StateMover {
  return async (params, onProgress) => {
    const connection = new SshConnection({
      host: params.targetHost,
      port: config.port,
      username: config.username,
      privateKeyPath: config.privateKeyPath,
      ...(config.knownHostsPath ? { knownHostsPath: config.knownHostsPath } : {}),
      insecureSkipHostKeyCheck: config.insecureSkipHostKeyCheck,
    });
    const target = new SftpFiles(connection);
    try {
      const result = await moveStateFile({ files: new LocalFiles(), path: params.path }, { files: target, path: params.targetPath }, { onProgress, removeSource: false });
      return { ...result, targetHost: params.targetHost, targetPath: params.targetPath };
    } finally {
      target.close();
      connection.close();
    }
  };
}
