export { SshConnection, SshTargetSchema, parseSshTarget, type SshTarget, type SshTargetInput } from './ssh-connection.js';
export { SshCommandRunner } from './ssh-runner.js';
export { HostKeyMismatch, SshAuthFailed, ChecksumMismatch, classifySshError } from './errors.js';
export { parseKnownHosts, sha256Fingerprint, checkHostKey, type KnownHostKey, type HostKeyTrust } from './host-key.js';
export { shellQuote, commandLine } from './shell-quote.js';
export { LocalFiles, SftpFiles, partialPath, type HostFiles } from './host-files.js';
export { moveStateFile, type FileOnHost, type MoveStateFileOptions, type MoveStateFileResult } from './sftp-move.js';
