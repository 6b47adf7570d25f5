import { Avatar } from "@mantine/core";

/** An application's logo, or its initials when it has none (or the image does not load). */
export function AppLogo({ name, logoUrl, size = "md" }: { name: string; logoUrl: string | null; size?: string }) {
  // Decoration next to the name, which is always written out: no alternative text.
  return <Avatar src={logoUrl} alt="" name={name} color="initials" size={size} radius="md" />;
}
