package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
)

//go:embed report.html.tmpl
var htmlTemplate string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(x float64) string { return template.HTMLEscapeString(formatPct(x)) },
}).Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained HTML file: its data is
// embedded as JSON and its charts are drawn as SVG by a script in the page,
// so it opens anywhere with no network.
func (r *Report) WriteHTML(w io.Writer) error {
	data, err := json.Marshal(r) // escapes <, > and & so it cannot end the script
	if err != nil {
		return err
	}
	return tmpl.Execute(w, struct {
		*Report
		JSON template.JS
	}{r, template.JS(data)})
}

func formatPct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
