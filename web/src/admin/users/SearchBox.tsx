import { CloseButton, TextInput } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { useEffect, useRef, useState } from "react";

type Props = {
  /** The search the URL holds now. */
  value: string;
  onSearch: (value: string) => void;
  delay?: number;
};

/** A search box that asks the API only once typing pauses, and follows the URL back. */
export function SearchBox({ value, onSearch, delay = 300 }: Props) {
  const [input, setInput] = useState(value);
  const [debounced] = useDebouncedValue(input, delay);
  const sent = useRef(value);

  // biome-ignore lint/correctness/useExhaustiveDependencies: onSearch changes every render; only a pause in typing should send
  useEffect(() => {
    const next = debounced.trim();
    if (next !== sent.current) {
      sent.current = next;
      onSearch(next);
    }
  }, [debounced]);

  useEffect(() => {
    // The URL moved without us (back button, a link): show its search.
    if (value !== sent.current) {
      sent.current = value;
      setInput(value);
    }
  }, [value]);

  return (
    <TextInput
      label="Search"
      placeholder="Name or email"
      type="search"
      value={input}
      onChange={(event) => setInput(event.currentTarget.value)}
      maxLength={255}
      rightSection={
        input ? (
          <CloseButton
            aria-label="Clear the search"
            onClick={() => {
              setInput("");
              sent.current = "";
              onSearch("");
            }}
          />
        ) : null
      }
      style={{ flex: "1 1 220px" }}
    />
  );
}
