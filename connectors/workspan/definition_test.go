package workspan

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The bulk load inputs come from the embedded connector definition, and
// the client sends the format parameter each operation declares.
func TestBulkInputsFromTheDefinition(t *testing.T) {
	in := BulkInputs()
	require.Len(t, in, 4)
	data := in["BulkloadData"]
	assert.Equal(t, "data_format", data.FormatParam)
	assert.Equal(t, []string{"json", "csv"}, data.Formats)
	assert.Equal(t, "csv", data.DefaultFormat)
	assert.Contains(t, data.Layout, "first row will be column headers")
	assert.False(t, data.HeaderRowParam)

	opp := in["BulkloadOpportunity"]
	assert.Equal(t, "content_type", opp.FormatParam)
	assert.Equal(t, []string{"csv", "json"}, opp.Formats)

	file := in["BulkloadOpportunityFileAttachment"]
	assert.Equal(t, "content_type", file.FormatParam)
	assert.Equal(t, []string{"xlsx", "csv", "json"}, file.Formats)
	assert.Equal(t, "xlsx", file.DefaultFormat)
	assert.True(t, file.HeaderRowParam)
	assert.Empty(t, file.Layout, "a file upload's part is only \"file to upload\"")
	assert.Equal(t, "data_format", in["BulkloadDataFileAttachment"].FormatParam)

	// The client names the format as each operation declares, and sends
	// has_header_row only where it is declared.
	f := newFake(t, reply(200, `{"integration_id":"i","execution_id":"e"}`))
	c := f.client()
	yes := true
	p := BulkParams{IntegrationID: "i", Format: "csv", HasHeaderRow: &yes}
	body := []byte("name\nA\n")
	for op, send := range map[string]func() (*BulkExecution, error){
		"BulkloadData":               func() (*BulkExecution, error) { return c.BulkLoad(context.Background(), p, body) },
		"BulkloadOpportunity":        func() (*BulkExecution, error) { return c.BulkLoadOpportunities(context.Background(), p, body) },
		"BulkloadDataFileAttachment": func() (*BulkExecution, error) { return c.BulkLoadFile(context.Background(), p, "a.csv", body) },
		"BulkloadOpportunityFileAttachment": func() (*BulkExecution, error) {
			return c.BulkLoadOpportunitiesFile(context.Background(), p, "a.csv", body)
		},
	} {
		_, err := send()
		require.NoError(t, err, op)
		q, err := url.ParseQuery(f.last().RawQuery)
		require.NoError(t, err)
		assert.Equal(t, "csv", q.Get(in[op].FormatParam), op)
		assert.Equal(t, in[op].HeaderRowParam, q.Has("has_header_row"), op)
	}
	_, err := parseBulkInputs([]byte(`{"paths":{"/bulk/v1/bulkload":{"post":{"operationId":"X","parameters":[]}}}}`))
	assert.Error(t, err, "an operation without a format parameter")
}
