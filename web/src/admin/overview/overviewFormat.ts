// How the overview's figures read: bucket labels in UTC (the API's buckets are UTC hours
// and UTC days, which no local zone can relabel), counts in the reader's locale, ages
// rounded to what a person reads.
import type { Activity } from "./queries";

/** "14:00": the UTC hour a bucket starts. */
export function hourLabel(start: string): string {
  return new Date(start).toISOString().slice(11, 16);
}

/** "10 Mar": the UTC day a bucket is. */
export function dayLabel(start: string): string {
  return new Date(start).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
}

export function formatCount(value: number): string {
  return value.toLocaleString();
}

/** "45 s", "3 min", "5 h", "2 days": how long the oldest waiting item has waited. */
export function formatAge(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  const days = Math.floor(seconds / 86400);
  return days === 1 ? "1 day" : `${days} days`;
}

export const SERIES = {
  logins: [
    { name: "Logins", color: "teal.6" },
    { name: "Failed logins", color: "red.6" },
  ],
  signups: [
    { name: "Sign-ups", color: "indigo.6" },
    { name: "Refused sign-ups", color: "orange.5" },
  ],
};

export type ChartRow = {
  label: string;
  Logins: number;
  "Failed logins": number;
  "Sign-ups": number;
  "Refused sign-ups": number;
};

/** One row per bucket, oldest first, labelled by hour or by day. */
export function chartRows(activity: Activity, label: (start: string) => string): ChartRow[] {
  return activity.buckets.map((bucket) => ({
    label: label(bucket.start),
    Logins: bucket.logins,
    "Failed logins": bucket.logins_failed,
    "Sign-ups": bucket.signups,
    "Refused sign-ups": bucket.signups_failed,
  }));
}
