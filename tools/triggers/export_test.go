package triggers

// PipedrivePageSize is the page size of the Pipedrive pollers' listings.
const PipedrivePageSize = pipedrivePageSize
