//! Columns as snapd's `tabwriter.NewWriter(Stdout, 5, 3, 2, ' ', 0)` aligns them: each cell
//! but the last padded with spaces to the widest cell of its column plus 2, at least 5;
//! widths count characters (Go's tabwriter counts runes, escape sequences included).

/// The rows as aligned text, one line each.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![5usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 2);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter()
            .map(|row| row.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn aligned_like_go_tabwriter() {
        let text = render(&rows(&[
            &["Name", "Version", "Rev", "Notes"],
            &["core22", "20240111", "1122", "base"],
            &["ab", "1", "x1", "-"],
        ]));
        assert_eq!(
            text,
            "Name    Version   Rev   Notes\n\
             core22  20240111  1122  base\n\
             ab      1         x1    -\n"
        );
        // Minimum width 5 (3 + padding 2), and characters, not bytes.
        assert_eq!(
            render(&rows(&[&["a", "b"], &["✓", "c"]])),
            "a    b\n✓    c\n"
        );
        assert_eq!(render(&rows(&[&["abcdef✓", "x"]])), "abcdef✓  x\n");
    }
}
