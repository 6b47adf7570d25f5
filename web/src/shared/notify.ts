import { notifications } from "@mantine/notifications";

type Notice = { message: string; title?: string };

/** Something was done: a short green message that goes away by itself. */
export function notifySuccess({ message, title }: Notice): void {
  notifications.show({ color: "green", title, message });
}

/** Something failed outside a form (a form shows its error in place). */
export function notifyFailure({ message, title }: Notice): void {
  notifications.show({ color: "red", title, message });
}
