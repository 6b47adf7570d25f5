import { FitBadge } from "../FitBadge";

export function ClientStatus({ enabled }: { enabled: boolean }) {
  return enabled ? <FitBadge color="teal">enabled</FitBadge> : <FitBadge color="red">disabled</FitBadge>;
}
