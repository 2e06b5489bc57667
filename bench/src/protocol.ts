/**
 * What the benchmark target speaks, the same over raw TCP and over the WebSocket baseline.
 * Like a VNC server it talks first: a 12-byte greeting on accept. The client's first byte
 * then picks the mode for the rest of the connection:
 *   E  echo every byte back;
 *   P  push: the target writes 64 KiB buffers as fast as the connection takes them;
 *   S  sink: the target discards what it reads and answers one byte `A` per MiB received.
 */
export const GREETING = Buffer.from('RFB 003.008\n', 'latin1');
export const MODE_ECHO = 0x45;
export const MODE_PUSH = 0x50;
export const MODE_SINK = 0x53;
export const ACK = 0x41;
/** Bytes acknowledged by one ACK in sink mode. */
export const ACK_UNIT = 1024 * 1024;
/** Size of each write in push mode and of each client message in the upstream test. */
export const CHUNK = 64 * 1024;
