//! A table as coordinators have it: the file they saved from Excel, read into
//! a header and rows of text, each row with the line number its editor shows.
//!
//! A CSV may come in UTF-8 (with or without a byte-order mark), in Windows-1252
//! (what French Excel writes for "CSV (séparateur: point-virgule)"), or in
//! UTF-16 ("Texte Unicode"); its separator is `,`, `;` or a tab, whichever
//! splits the header line into the most known columns. A spreadsheet (`.xlsx`,
//! `.xlsb`, `.xls`, `.ods`) is read with calamine: the first visible sheet, its
//! first row the header, rows numbered as Excel numbers them. Anything else (a
//! PDF, a Word document, a photo) is refused with what it looks like and how
//! to save the directory instead. What the rows mean is not this module's
//! business: both readers hand the same [`Table`] to one validation.

use std::borrow::Cow;
use std::fmt;
use std::io::Cursor;

use calamine::{Reader as _, SheetType, SheetVisible, Sheets};

/// How to save a directory so that it can be read; every refusal ends with it.
pub const SAVE_AS: &str =
    "save it from Excel as 'CSV UTF-8 (délimité par des virgules)' or as .xlsx";

/// A file read as a table: its header and its rows, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The header's cells, as written (not trimmed).
    pub headers: Vec<String>,
    /// Each row, or why it could not be read.
    pub rows: Vec<Result<Row, Unreadable>>,
    /// What the file was read as.
    pub source: Source,
}

/// One row: its cells, as written, and where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line (CSV) or row (spreadsheet) number the coordinator's editor shows.
    pub line: usize,
    pub cells: Vec<String>,
}

/// A row that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub line: usize,
    pub message: String,
}

/// What a file was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Text with one row a line.
    Csv {
        encoding: TextEncoding,
        separator: char,
    },
    /// A workbook, of which one sheet was read.
    Spreadsheet {
        /// The sheet read.
        sheet: String,
        /// How many sheets the workbook has.
        sheets: usize,
    },
}

/// The character encoding a CSV was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, a byte-order mark ignored.
    Utf8,
    /// Not valid UTF-8: Windows-1252, what Excel writes on a French Windows.
    Windows1252,
    /// UTF-16 with a byte-order mark: Excel's "Texte Unicode".
    Utf16,
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Windows1252 => "Windows-1252 (Excel's French default)",
            TextEncoding::Utf16 => "UTF-16 (Excel's 'Texte Unicode')",
        })
    }
}

/// Why a file could not be read as a table at all.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The bytes are something else than a table.
    #[error("this file looks like {looks_like}, not a table of contacts: {SAVE_AS}")]
    NotATable { looks_like: &'static str },
    /// A workbook that calamine could not read.
    #[error("this file looks like {kind} but cannot be read ({source}): {SAVE_AS}")]
    Spreadsheet {
        kind: &'static str,
        source: calamine::Error,
    },
    /// A workbook without a single worksheet.
    #[error("this workbook has no sheet to read: {SAVE_AS}")]
    NoSheet,
    /// The header line of a CSV is unreadable.
    #[error("cannot read the header row: {0}")]
    Header(csv::Error),
}

/// The kinds of spreadsheet calamine reads, told apart by their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workbook {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

impl Workbook {
    fn describe(self) -> &'static str {
        match self {
            Workbook::Xlsx => "an Excel workbook (.xlsx)",
            Workbook::Xlsb => "an Excel binary workbook (.xlsb)",
            Workbook::Xls => "an Excel 97-2003 workbook (.xls)",
            Workbook::Ods => "an OpenDocument spreadsheet (.ods)",
        }
    }
}

/// What the first bytes say a file is.
enum Kind {
    Workbook(Workbook),
    Text,
    Other(&'static str),
}

const ZIP: &[u8] = b"PK\x03\x04";
const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `"Workbook"` as an OLE directory spells stream names (UTF-16LE).
fn utf16(name: &str) -> Vec<u8> {
    name.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn sniff(bytes: &[u8]) -> Kind {
    if bytes.starts_with(ZIP) {
        // Entry names are stored uncompressed, and an OpenDocument file starts
        // with its uncompressed `mimetype`.
        return if contains(bytes, b"xl/workbook.xml") {
            Kind::Workbook(Workbook::Xlsx)
        } else if contains(bytes, b"xl/workbook.bin") {
            Kind::Workbook(Workbook::Xlsb)
        } else if contains(bytes, b"application/vnd.oasis.opendocument.spreadsheet") {
            Kind::Workbook(Workbook::Ods)
        } else if contains(bytes, b"word/") {
            Kind::Other("a Word document (.docx)")
        } else if contains(bytes, b"ppt/") {
            Kind::Other("a PowerPoint presentation (.pptx)")
        } else if contains(bytes, b"application/vnd.oasis.opendocument.text") {
            Kind::Other("an OpenDocument text (.odt)")
        } else {
            Kind::Other("a ZIP archive")
        };
    }
    if bytes.starts_with(OLE) {
        return if contains(bytes, &utf16("EncryptedPackage")) {
            Kind::Other("a workbook protected by a password (remove the password first)")
        } else if contains(bytes, &utf16("WordDocument")) {
            Kind::Other("a Word 97-2003 document (.doc)")
        } else {
            Kind::Workbook(Workbook::Xls)
        };
    }
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let other = if starts(b"%PDF") {
        "a PDF document"
    } else if starts(b"\x89PNG") {
        "a PNG image"
    } else if starts(b"\xFF\xD8\xFF") {
        "a JPEG image (a photo or a scan)"
    } else if starts(b"GIF8") {
        "a GIF image"
    } else if starts(b"{\\rtf") {
        "an RTF document (WordPad)"
    } else if starts(b"Rar!") || starts(b"7z\xBC\xAF") || starts(b"\x1F\x8B") {
        "a compressed archive"
    } else if is_binary(bytes) {
        "a binary file"
    } else {
        return Kind::Text;
    };
    Kind::Other(other)
}

/// Whether bytes that are not UTF-16 hold control characters no text has: a
/// NUL, or more than one in a hundred of the others (tabs and line ends aside).
fn is_binary(bytes: &[u8]) -> bool {
    if encoding_rs::Encoding::for_bom(bytes)
        .is_some_and(|(e, _)| e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE)
    {
        return false;
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let controls = head
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F)
        .count();
    head.contains(&0) || controls * 100 > head.len()
}

/// Reads `bytes` as a table whose header should hold some of `known` columns
/// (compared without case), which tells a CSV's separator.
pub fn read(bytes: &[u8], known: &[&str]) -> Result<Table, TableError> {
    match sniff(bytes) {
        Kind::Workbook(kind) => read_workbook(bytes, kind),
        Kind::Text => {
            let (text, encoding) = decode(bytes);
            read_csv(&text, encoding, known)
        }
        Kind::Other(looks_like) => Err(TableError::NotATable { looks_like }),
    }
}

/// The text of a CSV: UTF-8 when it is (a byte-order mark dropped), UTF-16
/// when a byte-order mark says so, else Windows-1252.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, TextEncoding) {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes)
        && encoding != encoding_rs::UTF_8
    {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return (text, TextEncoding::Utf16);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(text) => (Cow::Borrowed(text), TextEncoding::Utf8),
        Err(_) => {
            // Windows-1252 maps every byte to a character: nothing is lost.
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(body);
            (text, TextEncoding::Windows1252)
        }
    }
}

fn csv_reader(text: &str, separator: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(separator)
        .from_reader(text.as_bytes())
}

/// The separator that splits the header line into the most known columns;
/// `,` when none does (the missing columns are then reported as such).
fn separator(text: &str, known: &[&str]) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let score = |separator: u8| match csv_reader(header, separator).headers() {
        Ok(headers) => headers
            .iter()
            .filter(|h| known.iter().any(|k| h.trim().eq_ignore_ascii_case(k)))
            .count(),
        Err(_) => 0,
    };
    let mut best = (b',', score(b','));
    for candidate in [b';', b'\t'] {
        let found = score(candidate);
        if found > best.1 {
            best = (candidate, found);
        }
    }
    best.0
}

/// Line numbers of CSV records, from their byte offsets. The csv crate's own
/// line count is one short after a CRLF line end, which Excel always writes;
/// its offset points at the `\n` of the line end before the record.
struct Lines<'a> {
    text: &'a [u8],
    /// How far newlines were counted, and the line there.
    at: usize,
    line: usize,
}

impl Lines<'_> {
    /// The line a record at this position starts on; records come in order.
    fn of(&mut self, position: Option<&csv::Position>) -> usize {
        let Some(position) = position else {
            return self.line;
        };
        let mut start = usize::try_from(position.byte()).unwrap_or(self.text.len());
        while let Some(b'\r' | b'\n') = self.text.get(start) {
            start += 1;
        }
        let start = start.min(self.text.len()).max(self.at);
        self.line += self.text[self.at..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.at = start;
        self.line
    }
}

fn read_csv(text: &str, encoding: TextEncoding, known: &[&str]) -> Result<Table, TableError> {
    let separator = separator(text, known);
    let mut reader = csv_reader(text, separator);
    let mut lines = Lines {
        text: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let headers = reader
        .headers()
        .map_err(TableError::Header)?
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|record| match record {
            Ok(record) => Ok(Row {
                line: lines.of(record.position()),
                cells: record.iter().map(str::to_owned).collect(),
            }),
            Err(e) => Err(Unreadable {
                line: lines.of(e.position()),
                message: e.to_string(),
            }),
        })
        .collect();
    Ok(Table {
        headers,
        rows,
        source: Source::Csv {
            encoding,
            separator: char::from(separator),
        },
    })
}

fn open_workbook(bytes: &[u8], kind: Workbook) -> Result<Sheets<Cursor<&[u8]>>, calamine::Error> {
    let cursor = Cursor::new(bytes);
    Ok(match kind {
        Workbook::Xlsx => Sheets::Xlsx(calamine::open_workbook_from_rs(cursor)?),
        Workbook::Xlsb => Sheets::Xlsb(calamine::open_workbook_from_rs(cursor)?),
        Workbook::Xls => Sheets::Xls(calamine::open_workbook_from_rs(cursor)?),
        Workbook::Ods => Sheets::Ods(calamine::open_workbook_from_rs(cursor)?),
    })
}

/// A cell as text. Numbers come without a decimal part when they have none
/// (`70000001`, not `70000001.0`): a phone typed without spaces is a number.
fn cell_text(cell: &calamine::Data) -> String {
    cell.to_string()
}

fn read_workbook(bytes: &[u8], kind: Workbook) -> Result<Table, TableError> {
    let failed = |source| TableError::Spreadsheet {
        kind: kind.describe(),
        source,
    };
    let mut workbook = open_workbook(bytes, kind).map_err(failed)?;
    let sheets = workbook.sheets_metadata().to_vec();
    // The first sheet a coordinator sees: visible, and a worksheet (not a chart).
    let sheet = sheets
        .iter()
        .find(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
        .or_else(|| sheets.first())
        .ok_or(TableError::NoSheet)?;
    let range = workbook.worksheet_range(&sheet.name).map_err(failed)?;
    let source = Source::Spreadsheet {
        sheet: sheet.name.clone(),
        sheets: sheets.len(),
    };
    // The range starts at the first cell with something in it, wherever it is.
    let Some((top, _)) = range.start() else {
        return Ok(Table {
            headers: Vec::new(),
            rows: Vec::new(),
            source,
        });
    };
    let header_row = usize::try_from(top).unwrap_or(0) + 1;
    let mut rows = range.rows();
    let headers = rows
        .next()
        .map(|row| row.iter().map(cell_text).collect())
        .unwrap_or_default();
    let rows = rows
        .enumerate()
        .map(|(i, row)| {
            Ok(Row {
                line: header_row + 1 + i,
                cells: row.iter().map(cell_text).collect(),
            })
        })
        .collect();
    Ok(Table {
        headers,
        rows,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["id", "name", "place"];

    fn csv_of(bytes: &[u8]) -> Table {
        read(bytes, KNOWN).unwrap()
    }

    #[test]
    fn the_separator_is_the_one_that_splits_the_header() {
        for (text, separator) in [
            ("id,name,place\nc-1,Awa,mopti\n", ','),
            ("id;name;place\nc-1;Awa;mopti\n", ';'),
            ("id\tname\tplace\nc-1\tAwa\tmopti\n", '\t'),
            // A name with a comma does not fool it: the header decides.
            ("ID ; Name ; Place\nc-1;Diallo, Awa;mopti\n", ';'),
        ] {
            let table = csv_of(text.as_bytes());
            assert_eq!(
                table.source,
                Source::Csv {
                    encoding: TextEncoding::Utf8,
                    separator
                },
                "{text}"
            );
            assert_eq!(table.headers.len(), 3, "{text}");
            let row = table.rows[0].as_ref().unwrap();
            assert_eq!((row.line, row.cells.len()), (2, 3), "{text}");
        }
    }

    #[test]
    fn rows_have_the_line_an_editor_shows_whatever_the_line_ends() {
        for text in [
            "id;name\nc-1;\"Awa\nDiallo\"\n\nc-2;Hama\n",
            "id;name\r\nc-1;\"Awa\r\nDiallo\"\r\n\r\nc-2;Hama\r\n",
        ] {
            let lines: Vec<usize> = csv_of(text.as_bytes())
                .rows
                .into_iter()
                .map(|row| row.unwrap().line)
                .collect();
            assert_eq!(lines, [2, 5], "{text:?}");
        }
    }

    #[test]
    fn windows_1252_utf_16_and_a_bom_read_the_same_names() {
        let text = "id;name;place\nc-1;Aïssata Cissé;mopti\n";
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(text.as_bytes());
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        for (bytes, encoding) in [
            (cp1252.into_owned(), TextEncoding::Windows1252),
            (bom, TextEncoding::Utf8),
            (utf16, TextEncoding::Utf16),
        ] {
            let table = csv_of(&bytes);
            assert_eq!(table.headers[0], "id", "{encoding:?}");
            assert_eq!(
                table.rows[0].as_ref().unwrap().cells[1],
                "Aïssata Cissé",
                "{encoding:?}"
            );
            assert!(matches!(table.source, Source::Csv { encoding: e, .. } if e == encoding));
        }
    }

    #[test]
    fn an_xlsx_gives_the_rows_excel_numbers() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("Annuaire").unwrap();
        // The table starts at B3, as a coordinator's title rows above it would push it.
        for (column, header) in ["id", "name", "place"].iter().enumerate() {
            let column = u16::try_from(column).unwrap() + 1;
            sheet.write_string(2, column, *header).unwrap();
        }
        sheet.write_string(3, 1, "c-1").unwrap();
        sheet.write_string(3, 2, "Fatoumata Koné").unwrap();
        sheet.write_number(4, 2, 70_000_001).unwrap();
        book.add_worksheet().set_name("Notes").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let table = read(&bytes, KNOWN).unwrap();
        assert_eq!(table.headers, ["id", "name", "place"]);
        assert_eq!(
            table.source,
            Source::Spreadsheet {
                sheet: "Annuaire".into(),
                sheets: 2
            }
        );
        let rows: Vec<Row> = table.rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].cells, ["c-1", "Fatoumata Koné", ""]);
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].cells, ["", "70000001", ""]);
    }

    #[test]
    fn other_files_are_refused_with_what_they_look_like() {
        for (bytes, looks_like) in [
            (
                &b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj"[..],
                "a PDF document",
            ),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "a PNG image"),
            (b"\x00\x01\x02\x03 random \x00\xFF", "a binary file"),
            (b"PK\x03\x04\x14\0\0\0word/document.xml", "a Word document"),
        ] {
            let refused = read(bytes, KNOWN).unwrap_err().to_string();
            assert!(refused.contains(looks_like), "{refused}");
            assert!(refused.ends_with(SAVE_AS), "{refused}");
        }
        // A broken .xlsx says what it seemed to be.
        let refused = read(b"PK\x03\x04 xl/workbook.xml truncated", KNOWN)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("an Excel workbook (.xlsx) but cannot be read"),
            "{refused}"
        );
    }
}
