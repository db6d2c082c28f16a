/**
 * platform/: the Linux calls Node's fs lacks, from the project's own small addon (@medvault/fsx,
 * compiled at install): extended attributes, nanosecond timestamps, mknod for FIFOs and devices,
 * unix datagrams for systemd's notification socket (see systemd.ts), and FastCDC's inner loop
 * (gearScan, for backup/chunker.ts), AES-256-GCM into a given buffer and in place (sealInto,
 * openInPlace, for crypto/aead.ts), and a folder's entries with their lstat in one call off the
 * main thread (scanDir, for the backup walk).
 */
import fsx from '@medvault/fsx';

export const { getXattrs, setXattr, setTimes, mknod, renameNoReplace, syncfs, notify, bindDatagram, recvDatagram, closeFd, gearScan, sealInto, openInPlace, scanDir } = fsx;
