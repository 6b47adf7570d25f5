import { Burger } from "@mantine/core";

/** The phone-width button that opens and closes an app's menu, named for its state. */
export function MenuBurger({ opened, onToggle }: { opened: boolean; onToggle: () => void }) {
  return (
    <Burger
      opened={opened}
      onClick={onToggle}
      hiddenFrom="sm"
      size="sm"
      aria-label={opened ? "Close the menu" : "Open the menu"}
      aria-expanded={opened}
    />
  );
}
