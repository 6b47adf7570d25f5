import { Checkbox, Input, SimpleGrid, Stack } from "@mantine/core";
import type { ReactNode } from "react";
import { ALL_TYPES, EVENT_TYPES } from "./eventTypes";

type Props = { value: string[]; onChange: (value: string[]) => void; error?: ReactNode };

/** Every type ("*", also the types of later versions), or a chosen few. */
export function EventTypesPicker({ value, onChange, error }: Props) {
  const all = value.includes(ALL_TYPES);
  return (
    <Input.Wrapper
      label="Event types"
      labelElement="div"
      withAsterisk
      error={error}
      component="fieldset"
      style={{ border: 0, padding: 0, margin: 0 }}
    >
      <Stack gap="xs" mt={4}>
        <Checkbox
          label="Every event type, including those added later"
          checked={all}
          onChange={(event) => onChange(event.currentTarget.checked ? [ALL_TYPES] : [])}
        />
        <Checkbox.Group value={all ? [] : value} onChange={onChange} aria-label="Chosen event types">
          <SimpleGrid cols={{ base: 1, xs: 2 }} spacing="xs">
            {EVENT_TYPES.map((type) => (
              <Checkbox
                key={type.value}
                value={type.value}
                label={type.value}
                description={type.description}
                disabled={all}
              />
            ))}
          </SimpleGrid>
        </Checkbox.Group>
      </Stack>
    </Input.Wrapper>
  );
}
