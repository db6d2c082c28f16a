/** Roles, weakest first: a viewer sees, a technician also restores, an admin also manages people. */
export const roles = ['viewer', 'technician', 'admin'] as const;
export type Role = (typeof roles)[number];

/** True when `role` is `needed` or stronger. */
export function hasRole(role: Role, needed: Role): boolean {
  return roles.indexOf(role) >= roles.indexOf(needed);
}
